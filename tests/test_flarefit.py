"""Flare templates and fits: numba kernels against plain references, fits against injected truth."""
from __future__ import annotations

import numpy as np
import pytest

from flarelight.runtime import flarefit, kernels
from flarelight.runtime.simulate import davenport_template, flare_profile

from naive import davenport_average_ref, lm_ref

CAD = 2.0 / 1440.0


@pytest.mark.parametrize("fwhm_cad", [0.4, 1.0, 7.0])
def test_davenport_model_matches_reference(fwhm_cad):
    time = 2000.0 + np.arange(-20, 120) * CAD
    params = np.array([[2000.0 + 0.3 * CAD, fwhm_cad * CAD, 0.05], [2000.0 + 17.6 * CAD, 3 * CAD, 0.01]])
    model, jac = kernels.davenport_model(time, params, CAD)
    np.testing.assert_allclose(model, davenport_average_ref(time, params, CAD), atol=2e-7)
    inst, _ = kernels.davenport_model(time, params, 0.0)
    np.testing.assert_allclose(inst, davenport_average_ref(time, params, 0.0), atol=1e-12)
    # the analytic Jacobian against central differences of the model
    for c in range(params.size):
        h = 1e-7 if c % 3 == 0 else 1e-6 * abs(params.flat[c])
        hi, lo = params.copy(), params.copy()
        hi.flat[c] += h
        lo.flat[c] -= h
        num = (kernels.davenport_model(time, hi, CAD)[0] - kernels.davenport_model(time, lo, CAD)[0]) / (2 * h)
        assert np.max(np.abs(num - jac[:, c])) <= 1e-4 * np.max(np.abs(jac[:, c])) + 1e-9, c
    with pytest.raises(ValueError):
        kernels.davenport_model(time, np.array([[2000.0, 0.0, 1.0]]), CAD)


def test_templates_integral_peak_and_extent():
    x = np.linspace(-1.0, 300.0, 3_000_001)
    assert flarefit.template_integral() == pytest.approx(np.trapezoid(davenport_template(x), x), rel=1e-4)
    for template in flarefit.TEMPLATES:
        assert flarefit.shape(np.array([0.0]), template)[0] == pytest.approx(1.0, abs=1e-4)
        grid = np.linspace(-3, 10, 20001)
        assert flarefit.shape(grid, template).max() <= 1.0 + 1e-4
        lo, hi = flarefit.extent_x(0.5, template)
        np.testing.assert_allclose(flarefit.shape(np.array([lo, hi]), template), 0.5, atol=0.01)
        assert lo < 0 < hi
    # Mendoza: its integral is its own (wider tail than Davenport)
    assert flarefit.template_integral("mendoza2022") > flarefit.template_integral()


def test_lm_matches_plain_reference():
    rng = np.random.default_rng(2)
    time = 2000.0 + np.arange(-15, 90) * CAD
    truth = np.array([[2000.0 + 0.2 * CAD, 6 * CAD, 0.02]])
    y = davenport_average_ref(time, truth, CAD, sub=401) + rng.normal(0, 1e-3, time.size)
    init = np.array([[2000.0 + CAD, 3 * CAD, 0.015]])
    got, rss, model, jac = kernels.lm_davenport(time, y, init, CAD, (time[0], time[-1]), (0.1 * CAD, 1.0), 200, 1e-12)
    ref = lm_ref(lambda t, p: davenport_average_ref(t, p, CAD, sub=401), time, y, init)
    np.testing.assert_allclose(got, ref, rtol=2e-3)
    assert rss == pytest.approx(float(np.sum((y - model) ** 2)))
    np.testing.assert_allclose(model, kernels.davenport_model(time, got, CAD)[0])


def test_single_flare_one_component_and_parameters():
    time = 2000.0 + np.arange(-20, 150) * CAD
    truth = (2000.0 + 0.37 * CAD, 8 / 1440, 0.03)
    clean = flare_profile(time, *truth, exposure=CAD)
    n_comp = []
    for seed in range(6):
        y = clean + np.random.default_rng(seed).normal(0, 1e-3, time.size)
        fit = flarefit.fit_components(time, y, 1e-3, CAD)
        n_comp.append(fit.k)
        assert fit.ok
        np.testing.assert_allclose(fit.params[0], truth, rtol=0.15, atol=0.3 * CAD)
    assert n_comp == [1] * 6  # no spurious components in six noise realisations


def test_two_overlapping_flares_two_components():
    time = 2000.0 + np.arange(-20, 160) * CAD
    truth = np.array([[2000.0, 5 / 1440, 0.03], [2000.0 + 20 / 1440, 4 / 1440, 0.02]])
    y = sum(flare_profile(time, *p, exposure=CAD) for p in truth)
    y = y + np.random.default_rng(3).normal(0, 1e-3, time.size)
    fit = flarefit.fit_components(time, y, 1e-3, CAD)
    assert fit.k == 2
    np.testing.assert_allclose(fit.params[:, 0], truth[:, 0], atol=CAD)
    np.testing.assert_allclose(fit.params[:, 2], truth[:, 2], rtol=0.15)
    # a one-component fit of the same data is much worse by the BIC
    one = flarefit.fit_components(time, y, 1e-3, CAD, max_components=1)
    assert one.k == 1 and one.bic > fit.bic + flarefit.DEFAULT_DELTA_BIC


def test_ed_uncertainty_is_calibrated():
    time = 2000.0 + np.arange(-20, 120) * CAD
    truth = (2000.0 + 0.1 * CAD, 6 / 1440, 0.01)
    ed_true = truth[1] * truth[2] * 86400 * flarefit.template_integral()
    clean = flare_profile(time, *truth, exposure=CAD)
    pulls = []
    for seed in range(40):
        y = clean + np.random.default_rng(100 + seed).normal(0, 1e-3, time.size)
        fit = flarefit.fit_flare(time, y, 1e-3, truth, CAD)
        ed, err = flarefit.ed_seconds(fit.params, fit.cov)
        pulls.append((ed[0] - ed_true) / err[0])
    pulls = np.array(pulls)
    assert abs(np.mean(pulls)) < 0.5
    assert 0.6 < np.std(pulls) < 1.5


def test_mendoza_template_fits_its_own_flare():
    time = 2000.0 + np.arange(-20, 200) * CAD
    truth = np.array([[2000.0 + 0.2 * CAD, 10 / 1440, 0.02]])
    y = flarefit.model(time, truth, CAD, "mendoza2022") + np.random.default_rng(5).normal(0, 5e-4, time.size)
    fit = flarefit.fit_components(time, y, 5e-4, CAD, template="mendoza2022", max_components=1)
    np.testing.assert_allclose(fit.params[0], truth[0], rtol=0.05, atol=0.2 * CAD)
    with pytest.raises(ValueError, match="template"):
        flarefit.fit_components(time, y, 5e-4, CAD, template="gaussian")
