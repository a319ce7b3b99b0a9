"""Flare templates fitted to a flare's excess over its baseline: single flares and sums of components.

A flare's relative excess ``y = flux / baseline - 1`` is modelled as a sum of ``k`` templates, each averaged over
the exposure, with parameters ``tpeak`` (days), ``fwhm`` (days) and ``amplitude`` (peak relative excess before
exposure averaging):

* ``"davenport2014"`` (default): Davenport et al. 2014 (ApJ 797, 122), the template of the injector
  (:mod:`flarelight.runtime.simulate`); exposure averaging is exact (the template's antiderivative), with an
  analytic Jacobian;
* ``"mendoza2022"``: Mendoza et al. 2022 (AJ 164, 17), rescaled so that ``tpeak`` is its maximum and
  ``amplitude`` its peak value (``fwhm`` keeps the paper's meaning); averaged over 7 sub-exposures.

:func:`fit_flare` is a Levenberg-Marquardt least-squares fit of ``(tpeak, ln fwhm, amplitude)`` per component
(for Davenport entirely in a numba kernel, :func:`flarelight.runtime.kernels.lm_davenport`; for Mendoza in numpy
with central-difference derivatives), peaks and widths clamped to bounds. :func:`fit_components` adds components one at a time at the
largest remaining residual and keeps a ``k + 1``-component fit only when it is significantly better:
its Bayesian information criterion ``BIC = RSS / sigma^2 + 3k ln n`` (``sigma`` the local noise, ``n`` the
fitted cadences) is lower by more than ``delta_bic`` (default 10, "very strong" evidence on the Kass & Raftery
1995 scale; with 3 more parameters the residual chi^2 must drop by 10 + 3 ln n, ~28 for 400 cadences), every
amplitude exceeds
``NEW_COMPONENT_SIGMA`` (3) times the local noise, and no component is wider than ``COMPONENT_WIDTH_RATIO`` (3)
times the widest before it (or ``COMPONENT_MIN_WIDTH`` exposures).

Uncertainties: the covariance ``(J^T J)^-1 s^2`` with ``s^2`` the larger of the local noise variance and the
fit's residual variance ``RSS / (n - 3k)`` (so a template that does not describe the flare widens them).
``ED = amplitude x fwhm x 86400 x I`` seconds, ``I`` the template's integral in units of its FWHM.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import kernels

TEMPLATES = ("davenport2014", "mendoza2022")
DEFAULT_TEMPLATE = "davenport2014"
#: a new component must peak at least this many local sigmas above the current fit's residual
NEW_COMPONENT_SIGMA = 3.0
#: an added component may be at most this many times wider (FWHM) than the widest component so far, or
#: ``COMPONENT_MIN_WIDTH`` exposures: a broad "component" under a flare is baseline, not flare
COMPONENT_WIDTH_RATIO, COMPONENT_MIN_WIDTH = 3.0, 5.0
#: minimum BIC improvement that accepts one more component
DEFAULT_DELTA_BIC = 10.0
#: at most this many components per group
DEFAULT_MAX_COMPONENTS = 4
#: Levenberg-Marquardt: iterations, relative RSS change that counts as converged
MAX_ITER, RTOL = 30, 1e-6
#: Mendoza sub-exposures
MENDOZA_OVERSAMPLE = 7


def check_template(template: str) -> str:
    """The template's name, or ValueError naming the choices."""
    if template not in TEMPLATES:
        raise ValueError(f"template={template!r}: choose one of {TEMPLATES}")
    return template


@lru_cache(maxsize=None)
def _mendoza_peak() -> tuple[float, float]:
    """(x of the raw Mendoza template's maximum, its value)."""
    x = np.linspace(-1.0, 1.0, 20001)
    v = kernels.mendoza_model(x, np.array([[0.0, 1.0, 1.0]]), 0.0, 0.0, 1.0, 1)
    i = int(np.argmax(v))
    return float(x[i]), float(v[i])


def shape(x: np.ndarray, template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """The instantaneous template at ``x = (t - tpeak) / fwhm``: 1 at x = 0."""
    x = np.asarray(x, np.float64)
    p = np.array([[0.0, 1.0, 1.0]])
    if check_template(template) == "davenport2014":
        return kernels.davenport_model(x, p, 0.0)[0]
    xs, norm = _mendoza_peak()
    return kernels.mendoza_model(x, p, 0.0, xs, norm, 1)


@lru_cache(maxsize=None)
def template_integral(template: str = DEFAULT_TEMPLATE) -> float:
    """Integral of the template over ``x`` (ED = amplitude x fwhm x this; ~1.827 for Davenport 2014)."""
    x = np.linspace(-15.0, 400.0, 800001)
    return float(np.trapezoid(shape(x, template), x))


@lru_cache(maxsize=None)
def _shape_grid(template: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.r_[np.linspace(-15.0, 0.0, 6001), np.geomspace(1e-4, 400.0, 8000)]
    return x, shape(x, template)


def extent_x(frac: float, template: str = DEFAULT_TEMPLATE) -> tuple[float, float]:
    """``(x_lo, x_hi)``: where the template rises above / falls below ``frac`` of its peak (0 < frac <= 1)."""
    x, v = _shape_grid(template)
    if not frac < 1.0:
        return 0.0, 0.0
    above = np.flatnonzero(v >= max(frac, 1e-12))
    return float(x[above[0]]), float(x[above[-1]])


def model(time: np.ndarray, params: np.ndarray, exposure: float, template: str = DEFAULT_TEMPLATE,
          jacobian: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sum of exposure-averaged templates ``params`` (k, 3: tpeak, fwhm, amplitude) at ``time``.

    With ``jacobian``, also d model / d(tpeak, fwhm, amplitude) per component, shape (n, 3k).
    """
    params = np.atleast_2d(np.asarray(params, np.float64))
    if check_template(template) == "davenport2014":
        m, j = kernels.davenport_model(time, params, exposure)
        return (m, j) if jacobian else m
    xs, norm = _mendoza_peak()
    m = kernels.mendoza_model(time, params, exposure, xs, norm, MENDOZA_OVERSAMPLE)
    if not jacobian:
        return m
    j = np.empty((m.size, params.size))
    for c in range(params.size):  # central differences
        step = 1e-6 * max(abs(params.flat[c]), 1e-3) if c % 3 else 1e-6 * max(params[c // 3, 1], 1e-4)
        hi, lo = params.copy(), params.copy()
        hi.flat[c] += step
        lo.flat[c] -= step
        j[:, c] = (kernels.mendoza_model(time, hi, exposure, xs, norm, MENDOZA_OVERSAMPLE)
                   - kernels.mendoza_model(time, lo, exposure, xs, norm, MENDOZA_OVERSAMPLE)) / (2 * step)
    return m, j


def components(time: np.ndarray, params: np.ndarray, exposure: float, template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """Each component's model at ``time``: shape (k, n)."""
    params = np.atleast_2d(np.asarray(params, np.float64))
    return np.array([model(time, p[None, :], exposure, template) for p in params]).reshape(len(params), -1)


@dataclass(frozen=True)
class Fit:
    """A least-squares fit of ``k`` templates.

    Attributes
    ----------
    params : ndarray, shape (k, 3)
        ``tpeak`` (days), ``fwhm`` (days), ``amplitude`` per component, sorted by ``tpeak``.
    rss : float
        Residual sum of squares.
    n : int
        Cadences fitted.
    model : ndarray, shape (n,)
        The fitted sum at the fitted cadences.
    ok : bool
        Finite parameters with positive amplitudes (a FWHM may sit on a bound: the bound is a prior).
    jac : ndarray, shape (n, 3k)
        d model / d parameters at the fit.
    s2 : float
        Variance per cadence used for :attr:`cov`: the larger of sigma^2 and RSS / (n - 3k).
    sigma : float
        The local noise the fit was given (for :attr:`bic`).
    """

    params: np.ndarray
    rss: float
    n: int
    model: np.ndarray
    ok: bool
    jac: np.ndarray
    s2: float
    sigma: float = float("nan")

    @property
    def cov(self) -> np.ndarray:
        """Covariance ``(J^T J)^-1 s^2`` of the flattened parameters (computed when asked for)."""
        try:
            return np.linalg.pinv(self.jac.T @ self.jac) * self.s2
        except np.linalg.LinAlgError:
            return np.full((self.jac.shape[1],) * 2, np.nan)

    @property
    def k(self) -> int:
        return int(self.params.shape[0])

    @property
    def bic(self) -> float:
        """``RSS / sigma^2 + 3k ln n`` (the local noise ``sigma`` known; ``n ln(RSS / n) + 3k ln n`` without it)."""
        return bic(self.rss, self.n, 3 * self.k, self.sigma)


def _theta(params: np.ndarray) -> np.ndarray:
    th = params.astype(np.float64).copy()
    th[:, 1] = np.log(th[:, 1])
    return th.ravel()


def _params(theta: np.ndarray) -> np.ndarray:
    p = theta.reshape(-1, 3).copy()
    p[:, 1] = np.exp(p[:, 1])
    return p


def fit_flare(time: np.ndarray, y: np.ndarray, sigma: float, init: np.ndarray, exposure: float, *,
              template: str = DEFAULT_TEMPLATE, fwhm_bounds: tuple[float, float] = (1e-4, 2.0),
              tpeak_bounds: tuple[float, float] | None = None, max_iter: int = MAX_ITER) -> Fit:
    """Levenberg-Marquardt fit of the sum of templates starting at ``init`` (k, 3) to ``y`` at ``time``.

    Parameters
    ----------
    time, y : ndarray, shape (n,)
        Times (days) and relative excess.
    sigma : float
        The local noise of ``y`` (floor of the uncertainties).
    init : ndarray, shape (k, 3)
        Starting ``tpeak``, ``fwhm``, ``amplitude``.
    exposure : float
        Exposure (days).
    fwhm_bounds : (float, float)
        Allowed FWHM (days).
    tpeak_bounds : (float, float), optional
        Allowed peak times (default: the fitted times, one exposure either side).
    """
    time = np.asarray(time, np.float64)
    y = np.asarray(y, np.float64)
    n = time.size
    init = np.atleast_2d(np.asarray(init, np.float64))
    k = init.shape[0]
    lo_t, hi_t = tpeak_bounds if tpeak_bounds is not None else (time[0] - exposure, time[-1] + exposure)
    lw_lo, lw_hi = math.log(fwhm_bounds[0]), math.log(fwhm_bounds[1])
    init = init.copy()
    init[:, 1] = np.clip(init[:, 1], fwhm_bounds[0], fwhm_bounds[1])
    init[:, 0] = np.clip(init[:, 0], lo_t, hi_t)

    def clamp(th: np.ndarray) -> np.ndarray:
        t3 = th.reshape(-1, 3)
        t3[:, 0] = np.clip(t3[:, 0], lo_t, hi_t)
        t3[:, 1] = np.clip(t3[:, 1], lw_lo, lw_hi)
        return th

    if template == "davenport2014":
        params, rss, m, jac = kernels.lm_davenport(time, y, init, exposure, (lo_t, hi_t), fwhm_bounds, max_iter, RTOL)
        return _finish(params, rss, m, jac, n, sigma)
    th = _theta(init)
    m, jac = model(time, _params(th), exposure, template, jacobian=True)
    r = y - m
    rss = float(r @ r)
    lam = 1e-3
    for _ in range(max_iter):
        jt = jac.copy()
        jt[:, 1::3] *= _params(th)[:, 1]  # d/d ln fwhm
        a = jt.T @ jt
        g = jt.T @ r
        d = np.diag(a).copy()
        d[d <= 0] = 1e-300
        improved = False
        while lam < 1e12:
            try:
                step = np.linalg.solve(a + lam * np.diag(d), g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            th_new = clamp(th + step)
            m_new, jac_new = model(time, _params(th_new), exposure, template, jacobian=True)
            r_new = y - m_new
            rss_new = float(r_new @ r_new)
            if np.isfinite(rss_new) and rss_new <= rss:
                improved = True
                done = rss - rss_new <= RTOL * max(rss, 1e-300)
                th, m, jac, r, rss = th_new, m_new, jac_new, r_new, rss_new
                lam = max(lam / 3.0, 1e-9)
                break
            lam *= 4.0
        if not improved or done:
            break
    return _finish(_params(th), rss, m, jac, n, sigma)


def _finish(params: np.ndarray, rss: float, m: np.ndarray, jac: np.ndarray, n: int, sigma: float) -> Fit:
    """The :class:`Fit` of converged parameters: covariance, ``ok``, components sorted by peak time."""
    k = params.shape[0]
    dof = max(n - 3 * k, 1)
    s2 = max(sigma * sigma if np.isfinite(sigma) else 0.0, rss / dof)
    ok = bool(np.all(np.isfinite(params)) and np.all(params[:, 1] > 0) and np.all(params[:, 2] > 0)
              and np.isfinite(rss) and n > 3 * k)
    order = np.argsort(params[:, 0], kind="stable")
    idx = (3 * order[:, None] + np.arange(3)[None, :]).ravel()
    return Fit(params=params[order], rss=rss, n=n, model=m, ok=ok, jac=jac[:, idx], s2=s2, sigma=float(sigma))


def bic(rss: float, n: int, p: int, sigma: float) -> float:
    """Bayesian information criterion of a least-squares fit with ``p`` parameters to ``n`` cadences:
    ``RSS / sigma^2 + p ln n`` for a known noise ``sigma``, else ``n ln(RSS / n) + p ln n``."""
    if n <= 0:
        return math.inf
    if np.isfinite(sigma) and sigma > 0:
        return rss / (sigma * sigma) + p * math.log(n)
    if not rss > 0:
        return -math.inf
    return n * math.log(rss / n) + p * math.log(n)


def initial_guess(time: np.ndarray, y: np.ndarray, i: int, exposure: float) -> np.ndarray:
    """(tpeak, fwhm, amplitude) seeded at cadence ``i``: its time and excess, FWHM from the cadences above half
    of it (at least one exposure)."""
    amp = float(y[i])
    half = 0.5 * amp
    a = i
    while a > 0 and y[a - 1] > half:
        a -= 1
    b = i
    while b < y.size - 1 and y[b + 1] > half:
        b += 1
    fwhm = max(float(time[b] - time[a]), exposure, 1e-4)
    return np.array([float(time[i]), fwhm, max(amp, 1e-12)])


def fit_components(time: np.ndarray, y: np.ndarray, sigma: float, exposure: float, *,
                   template: str = DEFAULT_TEMPLATE, max_components: int = DEFAULT_MAX_COMPONENTS,
                   delta_bic: float = DEFAULT_DELTA_BIC, seed: np.ndarray | None = None,
                   fwhm_bounds: tuple[float, float] = (1e-4, 2.0), search: bool = True,
                   tpeak_bounds: tuple[float, float] | None = None) -> Fit:
    """Fit one template at the largest excess (or ``seed``, shape (k, 3)), then (with ``search``) add components
    while the BIC criterion of the module docstring accepts them (at most ``max_components``). Seeded components
    whose amplitude falls below ``NEW_COMPONENT_SIGMA`` local sigmas are dropped. Every peak stays within
    ``tpeak_bounds`` (default: the fitted times); new components are sought there only."""
    time = np.asarray(time, np.float64)
    y = np.asarray(y, np.float64)
    lo_t, hi_t = tpeak_bounds if tpeak_bounds is not None else (time[0] - exposure, time[-1] + exposure)
    inside = (time >= lo_t) & (time <= hi_t)
    if not inside.any():
        inside[:] = True
    if seed is None:
        seed = initial_guess(time, y, int(np.flatnonzero(inside)[np.argmax(y[inside])]), exposure)[None, :]
    sig = sigma if np.isfinite(sigma) and sigma > 0 else 0.0
    kw = {"template": template, "fwhm_bounds": fwhm_bounds, "tpeak_bounds": (lo_t, hi_t)}
    best = fit_flare(time, y, sigma, seed, exposure, **kw)
    while best.k > 1 and not np.all(best.params[:, 2] > NEW_COMPONENT_SIGMA * sig):  # a seeded component faded
        keep = best.params[:, 2] > NEW_COMPONENT_SIGMA * sig
        seed = best.params[keep] if keep.any() else best.params[[int(np.argmax(best.params[:, 2]))]]
        best = fit_flare(time, y, sigma, seed, exposure, **kw)
    while search and best.k < max_components:
        r = y - best.model
        i = int(np.flatnonzero(inside)[np.argmax(r[inside])])
        if not r[i] > NEW_COMPONENT_SIGMA * sig:
            break
        guess = initial_guess(time, r, i, exposure)
        cand = fit_flare(time, y, sigma, np.vstack([best.params, guess]), exposure, **kw)
        widest = max(float(np.max(best.params[:, 1])) * COMPONENT_WIDTH_RATIO, COMPONENT_MIN_WIDTH * exposure)
        if not (cand.ok and cand.bic < best.bic - delta_bic and np.all(cand.params[:, 2] > NEW_COMPONENT_SIGMA * sig)
                and np.all(cand.params[:, 1] <= widest)):
            break
        best = cand
    return best


def gaussian_preference(time: np.ndarray, y: np.ndarray, fit: Fit, sigma: float, max_iter: int = 40) -> float:
    """``BIC(fit) - BIC(one Gaussian bump)`` on the same cadences: > 0 when a symmetric bump describes ``y``
    better than the flare fit (a Levenberg-Marquardt fit of centre, ln width and amplitude, started at the fit's
    centroid)."""
    time = np.asarray(time, np.float64)
    y = np.asarray(y, np.float64)
    n = time.size
    if n < 8 or fit.n != n:
        return -math.inf
    w = np.clip(fit.model, 0.0, None)
    if not w.sum() > 0:
        return -math.inf
    c0 = float(np.sum(w * time) / w.sum())
    s0 = max(float(np.sqrt(np.sum(w * (time - c0) ** 2) / w.sum())), 1e-4)
    th = np.array([c0, math.log(s0), float(np.max(fit.model))])

    def evaluate(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = math.exp(t[1])
        u = (time - t[0]) / s
        g = np.exp(-0.5 * u * u)
        m = t[2] * g
        return m, np.column_stack([m * u / s, m * u * u, g])

    m, jac = evaluate(th)
    r = y - m
    rss = float(r @ r)
    lam = 1e-3
    for _ in range(max_iter):
        a, gr = jac.T @ jac, jac.T @ r
        improved = False
        while lam < 1e10:
            try:
                step = np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-300), gr)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            new = th + step
            new[0] = min(max(new[0], time[0]), time[-1])
            new[1] = min(max(new[1], math.log(1e-4)), math.log(2.0))
            m_new, jac_new = evaluate(new)
            r_new = y - m_new
            rss_new = float(r_new @ r_new)
            if rss_new <= rss:
                done = rss - rss_new <= RTOL * max(rss, 1e-300)
                th, m, jac, r, rss, improved = new, m_new, jac_new, r_new, rss_new, True
                lam = max(lam / 3.0, 1e-9)
                break
            lam *= 4.0
        if not improved or done:
            break
    return fit.bic - bic(rss, n, 3, sigma)


def ed_seconds(params: np.ndarray, cov: np.ndarray, template: str = DEFAULT_TEMPLATE) -> tuple[np.ndarray, np.ndarray]:
    """ED (s) of each component and its uncertainty from the covariance."""
    params = np.atleast_2d(params)
    integ = template_integral(template) * 86400.0
    ed = integ * params[:, 2] * params[:, 1]
    err = np.empty(len(params))
    for j, (_, w, a) in enumerate(params):
        c = cov[3 * j + 1:3 * j + 3, 3 * j + 1:3 * j + 3]
        g = integ * np.array([a, w])
        err[j] = math.sqrt(max(float(g @ c @ g), 0.0))
    return ed, err


__all__ = ["TEMPLATES", "DEFAULT_TEMPLATE", "Fit", "fit_flare", "fit_components", "model", "components", "shape",
           "template_integral", "extent_x", "ed_seconds", "initial_guess", "check_template", "gaussian_preference"]
