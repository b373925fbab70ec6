"""The pure descent core on synthetic objectives (no TVM, milliseconds)."""

import itertools

import pytest

from ms_droplet.droplet import Droplet
from ms_droplet.tiles import perfect_tilings
from ms_droplet.turns import DESCENT_TURN, EXPLORER_TURN, Turns


def bowl(optimum):
    return lambda p: 1.0 + sum((a - b) ** 2 for a, b in zip(p, optimum))


def run(droplet, objective, batch, budget):
    """Drive a droplet like MetaSchedule would; return every batch it proposed."""
    batches, used = [], 0
    while used < budget and not droplet.converged:
        points = droplet.ask(min(batch, budget - used))
        if not points:
            break
        batches.append(points)
        used += len(points)
        for point in points:
            droplet.tell(point, [objective(point)])
    return batches


@pytest.mark.parametrize("start", [(0, 0, 0), (29, 29, 29), (15, 0, 29)])
def test_converges_to_the_optimum_of_a_convex_bowl(start):
    sizes, optimum = (30, 30, 30), (7, 21, 3)
    objective = bowl(optimum)
    droplet = Droplet(sizes, seed=3)
    droplet.restart(start, [objective(start)])
    batches = run(droplet, objective, batch=8, budget=10_000)
    assert droplet.converged
    assert droplet.centre == optimum
    # Coordinate descent needs far fewer evaluations than the 27,000 points of the box.
    assert sum(map(len, batches)) < 600


def test_respects_batch_size_and_budget():
    objective = bowl((5, 5))
    droplet = Droplet((40, 40), seed=0)
    droplet.restart((0, 39), [objective((0, 39))])
    batches = run(droplet, objective, batch=5, budget=23)
    assert all(len(b) <= 5 for b in batches)
    assert sum(map(len, batches)) == 23


def test_never_proposes_a_visited_point():
    objective = bowl((3, 9, 1))
    droplet = Droplet((10, 12, 4), seed=7)
    droplet.restart((0, 0, 0), [objective((0, 0, 0))])
    batches = run(droplet, objective, batch=6, budget=10_000)
    proposed = list(itertools.chain.from_iterable(batches))
    assert len(proposed) == len(set(proposed))
    assert (0, 0, 0) not in proposed
    # After a restart, earlier points stay off-limits.
    droplet.restart((9, 11, 3), [objective((9, 11, 3))])
    again = list(itertools.chain.from_iterable(run(droplet, objective, 6, 10_000)))
    assert not set(again) & set(proposed)


def test_grows_the_step_when_no_neighbour_improves():
    flat = lambda p: 1.0  # noqa: E731 - nothing is ever faster
    droplet = Droplet((64,), seed=0)
    droplet.restart((10,), [1.0])
    steps = []
    while not droplet.converged:
        points = droplet.ask(1)
        if not points:
            break
        steps.append(abs(points[0][0] - 10))
        droplet.tell(points[0], [flat(points[0])])
    # Steps double until they leave the box (10 - 16 and 10 - 32 fall outside).
    assert steps == [1, 1, 2, 2, 4, 4, 8, 8, 16, 32]
    assert droplet.centre == (10,)


def test_step_growth_reaches_a_distant_basin():
    # A plateau with one deep basin 16 steps away: only a grown step can find it.
    def objective(p):
        return 0.2 if p[0] == 30 else 1.0

    droplet = Droplet((64,), seed=0)
    droplet.restart((14,), [objective((14,))])
    run(droplet, objective, batch=2, budget=100)
    assert droplet.centre == (30,)


def test_restart_descends_again_from_a_new_point():
    objective = bowl((2, 2))
    droplet = Droplet((20, 20), seed=1)
    droplet.restart((19, 19), [objective((19, 19))])
    run(droplet, objective, batch=4, budget=10_000)
    assert droplet.converged and droplet.centre == (2, 2)
    droplet.restart((0, 19), [objective((0, 19))])
    assert not droplet.converged and droplet.centre == (0, 19) and droplet.step == 1
    run(droplet, objective, batch=4, budget=10_000)
    # Every point around the optimum was visited by the first descent; the second one still
    # walks back down to the optimum's neighbourhood.
    assert objective(droplet.centre) <= 2.0


def test_accepts_only_significant_improvements():
    droplet = Droplet((10,), significance=0.05, min_improvement=0.0, seed=0)
    droplet.restart((5,), [1.00, 1.05, 0.95, 1.02, 0.98])
    (a, b) = droplet.ask(2)
    assert not droplet.tell(a, [0.97, 1.04, 0.93, 1.01, 0.96])  # within noise
    assert droplet.centre == (5,)
    assert droplet.tell(b, [0.50, 0.51, 0.49, 0.50, 0.52])
    assert droplet.centre == b


def test_min_improvement_applies_with_single_repeats():
    droplet = Droplet((10,), min_improvement=0.05, seed=0)
    droplet.restart((5,), [1.0])
    a, b = droplet.ask(2)
    assert not droplet.tell(a, [0.97])
    assert droplet.tell(b, [0.90])


def test_failures_are_never_a_new_best():
    droplet = Droplet((10,), seed=0)
    droplet.restart((5,), [1.0])
    a, b = droplet.ask(2)
    assert not droplet.tell(a, None)
    assert not droplet.tell(b, [])
    assert droplet.centre == (5,)
    assert droplet.is_visited(a) and droplet.is_visited(b)


def test_give_back_and_reject():
    droplet = Droplet((10, 10), seed=0)
    droplet.restart((5, 5), [1.0])
    first = droplet.ask(4)
    droplet.give_back(first[2:])
    droplet.reject(first[1])
    assert droplet.pending == frozenset({first[0]})
    assert droplet.ask(2) == first[2:]


def test_same_seed_same_proposals():
    objective = bowl((4, 17, 2, 9))

    def proposals(seed):
        droplet = Droplet((8, 20, 5, 12), seed=seed)
        droplet.restart((0, 0, 0, 0), [objective((0, 0, 0, 0))])
        return run(droplet, objective, batch=5, budget=200)

    assert proposals(11) == proposals(11)
    assert proposals(11) != proposals(12)


def test_invalid_input_is_refused():
    with pytest.raises(ValueError, match="at least one option"):
        Droplet((3, 0))
    droplet = Droplet((3, 3))
    with pytest.raises(ValueError, match="outside the box"):
        droplet.restart((3, 0), [1.0])
    with pytest.raises(ValueError, match="successfully measured"):
        droplet.restart((1, 1), [])
    with pytest.raises(RuntimeError, match="before Droplet.restart"):
        Droplet((3,)).ask(1)


def test_paired_coordinates_also_move_together_in_opposite_directions():
    # A valley along the diagonal: from (2, 2) every single move loses and (3, 1) wins.
    def valley(point):
        a, b, c = point
        return 1.0 + abs(a + b - 4) * 5 + (b - 1) ** 2 + c * 0.0

    plain = Droplet((5, 5, 2), seed=0)
    plain.restart((2, 2, 0), [valley((2, 2, 0))])
    assert (3, 1, 0) not in plain.ask(5)  # the five single moves of step 1
    paired = Droplet((5, 5, 2), seed=0, pairs=[(0, 1)])
    paired.restart((2, 2, 0), [valley((2, 2, 0))])
    round_one = paired.ask(7)
    # The single moves first, then the pair's two transfers.
    assert round_one[-2:] == [(3, 1, 0), (1, 3, 0)]
    for point in round_one:
        paired.tell(point, [valley(point)])
    assert paired.centre == (3, 1, 0)
    with pytest.raises(ValueError, match="two different coordinates"):
        Droplet((3, 3), pairs=[(0, 0)])
    with pytest.raises(ValueError, match="two different coordinates"):
        Droplet((3, 3), pairs=[(0, 2)])


def test_perfect_tilings_are_exactly_the_valid_factorizations():
    tilings = perfect_tilings(24, 3, max_innermost_factor=4)
    assert len(tilings) == len(set(tilings))
    assert all(a * b * c == 24 and c <= 4 for a, b, c in tilings)
    brute = {
        (a, b, c)
        for a in range(1, 25)
        for b in range(1, 25)
        for c in range(1, 5)
        if a * b * c == 24
    }
    assert set(tilings) == brute
    assert list(tilings) == sorted(tilings)
    partitioned = perfect_tilings(32, 4, -1, 2, 8)
    assert partitioned and all(t[2] * t[3] % 8 == 0 for t in partitioned)


def test_a_fresh_measurement_of_the_centre_judges_the_neighbours():
    # The machine got slower between the centre's measurement and its neighbours': against the
    # old figure no neighbour is faster, against the centre measured beside them one is.
    def descent():
        droplet = Droplet((3, 3), significance=0.25, min_improvement=0.01, seed=0)
        droplet.restart((1, 1), [1.00, 1.01, 0.99])
        return droplet, droplet.ask(1)[0]

    stale, point = descent()
    assert not stale.tell(point, [1.90, 1.92, 1.88])
    fresh, point = descent()
    assert fresh.refresh_centre((1, 1), [2.00, 2.02, 1.98])
    assert fresh.tell(point, [1.90, 1.92, 1.88]) and fresh.centre == point
    # A control of a point that is no longer the centre, or that failed, changes nothing.
    assert not fresh.refresh_centre((1, 1), [5.0, 5.0, 5.0])
    assert not fresh.refresh_centre(point, None)


def test_combined_moves_take_every_faster_move_of_a_batch_at_once():
    # A separable bowl: from a corner, every coordinate's +1 move pays off. A batch of one
    # round (the six +1 moves; -1 leaves the box) accepts one of them; with combine, the next
    # batch starts with all of them at once.
    sizes, optimum, start = (12,) * 6, (8,) * 6, (0,) * 6
    objective = bowl(optimum)
    batches_to_optimum = {}
    for combine in (False, True):
        droplet = Droplet(sizes, seed=1, combine=combine)
        droplet.restart(start, [objective(start)])
        batches = run(droplet, objective, batch=6, budget=10_000)
        assert droplet.centre == optimum
        if combine:
            assert batches[1][0] == (1,) * 6
        batches_to_optimum[combine] = next(
            i for i in range(len(batches)) if optimum in itertools.chain(*batches[: i + 1])
        )
    assert batches_to_optimum[True] * 2 < batches_to_optimum[False], batches_to_optimum


def test_moves_that_gain_only_together_are_tried_together():
    # No single move is accepted (each gains 0.5%, under min_improvement's 1%), yet each is
    # faster than the centre: the next batch measures them combined, which gains 2.5%.
    def objective(point):
        return 1.0 - 0.005 * sum(point)

    droplet = Droplet((2,) * 5, seed=0, combine=True)
    droplet.restart((0,) * 5, [objective((0,) * 5)])
    first = droplet.ask(10)
    assert len(first) == 5
    for point in first:
        assert not droplet.tell(point, [objective(point)])
    assert droplet.ask(1) == [(1,) * 5]


def test_turns_go_to_the_higher_gain_per_second_and_alternate_when_neither_gains():
    turns = Turns()
    # The descent has the first batch; the explorer, unseen, the next.
    assert not turns.explorer_next(DESCENT_TURN)
    turns.record(DESCENT_TURN, 0.04, 4.0)  # 1% a second
    assert turns.explorer_next(DESCENT_TURN)
    turns.record(EXPLORER_TURN, 0.30, 20.0)  # 1.5% a second: it keeps the batches
    assert turns.explorer_next(EXPLORER_TURN)
    turns.record(EXPLORER_TURN, 0.0, 20.0)  # 0.75% a second over its latest two
    assert turns.rate(EXPLORER_TURN) == pytest.approx(0.0075)
    assert not turns.explorer_next(EXPLORER_TURN)
    # Only the latest two batches count: two without gain leave the descent at 0.
    turns.record(DESCENT_TURN, 0.0, 4.0)
    turns.record(DESCENT_TURN, -0.1, 4.0)  # a batch slower than the best gains nothing
    assert turns.rate(DESCENT_TURN) == 0.0
    assert turns.explorer_next(DESCENT_TURN)
    turns.record(EXPLORER_TURN, 0.0, 20.0)
    # Neither gains: they take turns.
    assert turns.rate(EXPLORER_TURN) == 0.0
    assert not turns.explorer_next(EXPLORER_TURN) and turns.explorer_next(DESCENT_TURN)
    # Taking turns, a new descent from an explored program keeps the descent's rate.
    turns.new_descent()
    assert turns.rate(DESCENT_TURN) == 0.0
    # Or the explorer takes every tied batch (stalled_turns="explorer"), until a new descent
    # from an explored program forgets the stalled one's batches: then it has the next batch.
    turns.ties_to_explorer = True
    assert turns.explorer_next(EXPLORER_TURN)
    turns.new_descent()
    assert turns.rate(DESCENT_TURN) is None
    assert not turns.explorer_next(EXPLORER_TURN)
    with pytest.raises(ValueError, match="not 'explore'"):
        turns.record("explore", 0.1, 1.0)
    with pytest.raises(ValueError, match="window of at least one batch"):
        Turns(window=0)
