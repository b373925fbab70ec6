"""Significance test (pure, no TVM)."""

import math
import sys

from ms_droplet.stats import is_significantly_faster, welch_p_value


def test_welch_is_scipys_one_sided_test():
    # By hand: Welch's t = -4.427 with 3.448 degrees of freedom; P(T < t) = 0.00795.
    assert math.isclose(welch_p_value([1.0, 1.2, 0.9], [1.5, 1.6, 1.4]), 0.00795, rel_tol=1e-3)
    assert welch_p_value([1.5, 1.6, 1.4], [1.0, 1.2, 0.9]) > 0.95


def test_welch_needs_two_samples_and_spread():
    assert welch_p_value([1.0], [2.0, 2.1]) is None
    assert welch_p_value([1.0, 1.0], [2.0, 2.0]) is None
    assert welch_p_value([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) < 1e-3


def test_significance_rejects_noise_and_accepts_clear_gains():
    reference = [1.00, 1.05, 0.95, 1.02, 0.98]
    noisy = [0.97, 1.04, 0.93, 1.01, 0.96]  # 2% faster on average, well within the spread
    clear = [0.80, 0.82, 0.79, 0.81, 0.80]
    kwargs = {"significance": 0.05, "min_improvement": 0.01}
    assert not is_significantly_faster(noisy, reference, **kwargs)
    assert is_significantly_faster(clear, reference, **kwargs)
    assert not is_significantly_faster(reference, clear, **kwargs)


def test_single_repeat_uses_the_relative_threshold():
    kwargs = {"significance": 0.05, "min_improvement": 0.05}
    assert not is_significantly_faster([0.97], [1.0], **kwargs)
    assert is_significantly_faster([0.90], [1.0], **kwargs)
    assert not is_significantly_faster([], [1.0], **kwargs)


def test_pure_modules_do_not_import_tvm():
    import ms_droplet.droplet
    import ms_droplet.stats
    import ms_droplet.tiles  # noqa: F401

    for name in ("ms_droplet.droplet", "ms_droplet.stats", "ms_droplet.tiles"):
        source = open(sys.modules[name].__file__).read()
        assert "import tvm" not in source and "from tvm" not in source
