"""Decision spaces of real traces from TVM design spaces."""

import pytest
from conftest import CUDA_TARGET, commit_records, sampled_candidates, te_module, tune_context
from tvm.s_tir import meta_schedule as ms

from ms_droplet import _tvm
from ms_droplet.space import DecisionSpace

# Kinds a design space of these workloads carries, and must therefore show up as coordinates.
EXPECTED_KINDS = {
    ("GMM", 0): {"SamplePerfectTile", "SampleCategorical", "Annotate"},
    ("C2D", 0): {"SamplePerfectTile", "SampleCategorical", "Annotate", "SampleComputeLocation"},
    ("SFM", 0): {"SamplePerfectTile", "SampleCategorical", "Annotate", "SampleComputeLocation"},
}


def measured_like_traces(context, count=4):
    """Valid, post-processed schedules as an exploration would hand to the descent."""
    strategy = ms.search_strategy.ReplayTrace()
    strategy._initialize_with_tune_context(context)
    strategy.pre_tuning(count, count, context.generate_design_space())
    candidates = strategy.generate_measure_candidates()
    strategy.post_tuning()
    return [c.sch for c in candidates]


def unit_neighbours(space):
    for dim, size in enumerate(space.sizes):
        for delta in (1, -1):
            point = list(space.origin)
            point[dim] += delta
            if 0 <= point[dim] < size:
                yield dim, tuple(point)


@pytest.mark.parametrize("workload", sorted(EXPECTED_KINDS))
def test_every_llvm_neighbour_is_a_valid_distinct_program(workload):
    context = tune_context(te_module(*workload))
    postprocs = context.space_generator.postprocs
    kinds_seen = set()
    moves = aliased = 0
    for sch in measured_like_traces(context):
        space = DecisionSpace(context.mod, sch.trace, postprocs, seed=1)
        origin = space.replay(space.origin)
        assert origin is not None
        # The origin replays to the very program that was measured.
        assert _tvm.module_hash(origin.mod) == _tvm.module_hash(sch.mod)
        hashes = {_tvm.module_hash(origin.mod)}
        for dim, point in unit_neighbours(space):
            coord = space.coordinates[dim]
            if not space.is_valid(point):
                # A tile factor that no longer divides its loop: refused before any replay.
                assert coord.kind == "SamplePerfectTile"
                continue
            neighbour = space.replay(point)
            assert neighbour is not None, f"{coord.kind} neighbour {point} failed to replay"
            module_hash = _tvm.module_hash(neighbour.mod)
            moves += 1
            # Some moves alias after post-processing (two parallel limits that fuse the same
            # loops; unit outer tiles that fuse alike): the strategy measures such a program
            # once and reuses its result. They must stay the exception.
            aliased += module_hash in hashes
            hashes.add(module_hash)
            kinds_seen.add(coord.kind)
    assert moves > 0 and aliased <= 0.3 * moves, (aliased, moves)
    assert kinds_seen >= EXPECTED_KINDS[workload]


def test_a_trace_read_back_from_a_json_database_has_the_same_coordinates(tmp_path):
    # A warm start, a resumed run and a post-optimisation descend from traces a database
    # wrote as JSON, where the parallel and vectorize limits come back as plain ints.
    context = tune_context(te_module("GMM", 0))
    postprocs = context.space_generator.postprocs
    candidates = sampled_candidates(context, 3)
    commit_records(ms.database.JSONDatabase(work_dir=str(tmp_path)), context, candidates)
    records = ms.database.JSONDatabase(work_dir=str(tmp_path)).get_all_tuning_records()
    read_back_by_program = {}
    for record in records:
        sch = record.as_measure_candidate().sch
        read_back_by_program[_tvm.module_hash(sch.mod)] = sch.trace
    assert len(read_back_by_program) == len(candidates)
    for candidate in candidates:
        here = DecisionSpace(context.mod, candidate.sch.trace, postprocs, seed=1)
        read_back = DecisionSpace(
            context.mod,
            read_back_by_program[_tvm.module_hash(candidate.sch.mod)],
            postprocs,
            seed=1,
        )
        assert "Annotate" in {c.kind for c in read_back.coordinates}
        assert read_back.coordinates == here.coordinates
        assert read_back.origin == here.origin
        # A move of the parallel limit replays to the same program from either trace.
        dim = next(i for i, c in enumerate(here.coordinates) if c.kind == "Annotate")
        point = list(here.origin)
        point[dim] = 0 if point[dim] else 1
        moved_here, moved_back = here.replay(point), read_back.replay(point)
        assert moved_here is not None and moved_back is not None
        assert _tvm.module_hash(moved_back.mod) == _tvm.module_hash(moved_here.mod)
        assert _tvm.module_hash(read_back.replay(read_back.origin).mod) == _tvm.module_hash(
            candidate.sch.mod
        )


def _locations_kept_one_by_one(mod, trace):
    """Every compute location (-2 .. 47) a schedule keeps, asked of TVM one value at a time."""
    trace = trace.simplified(remove_postproc=True)
    sch = _tvm.traced_schedule(mod, 1)
    kept = []

    def provider(inst, inputs, attrs, decision):
        if inst.kind.name == "SampleComputeLocation":
            values = []
            for value in range(-2, 48):
                probe = sch.copy()
                probe.sample_compute_location(inputs[0], decision=value)
                if _tvm.int_value(probe.trace.decisions[probe.trace.insts[-1]]) == value:
                    values.append(value)
            kept.append(tuple(values))
        return decision

    trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
    return kept


@pytest.mark.parametrize("workload", [("C2D", 0), ("SFM", 0)])
def test_compute_location_values_are_every_location_tvm_keeps(workload):
    # The space asks TVM top-down, one question per valid location; asking every value gives
    # the same locations.
    context = tune_context(te_module(*workload))
    for sch in measured_like_traces(context):
        space = DecisionSpace(context.mod, sch.trace, context.space_generator.postprocs, seed=1)
        locations = [c for c in space.coordinates if c.kind == "SampleComputeLocation"]
        expected = [v for v in _locations_kept_one_by_one(context.mod, sch.trace) if len(v) > 1]
        assert locations and [c.values for c in locations] == expected


def _tile_decisions(trace):
    return [
        [int(x) for x in trace.decisions[inst]]
        for inst in trace.insts
        if inst.kind.name == "SamplePerfectTile"
    ]


def test_factor_moves_scale_one_tile_level_and_keep_the_extent():
    context = tune_context(te_module("GMM", 0))
    (sch, *_) = measured_like_traces(context)
    space = DecisionSpace(context.mod, sch.trace, context.space_generator.postprocs)
    tiles = [c for c in space.coordinates if c.kind == "SamplePerfectTile"]
    assert tiles and all(c.factor >= 1 for c in tiles)
    assert all(128 % value == 0 for c in tiles for value in c.values)
    assert all(value <= 64 for c in tiles if c.factor == 3 for value in c.values)
    origin = _tile_decisions(space.trace_of(space.origin))
    valid = 0
    for dim, point in unit_neighbours(space):
        if space.coordinates[dim].kind != "SamplePerfectTile" or not space.is_valid(point):
            continue
        valid += 1
        moved = _tile_decisions(space.trace_of(point))
        # Every loop keeps its extent (the batch loop is 1, the others 128).
        assert [_prod(t) for t in moved] == [_prod(t) for t in origin]
        assert all(t[-1] <= 64 for t in moved)
        # Exactly one tile changed, in the moved factor and the outermost one only.
        changed = [(a, b) for a, b in zip(origin, moved) if a != b]
        assert len(changed) == 1
        before, after = changed[0]
        assert sum(x != y for x, y in zip(before[1:], after[1:])) == 1
    assert valid > 0


def test_transfer_moves_pass_a_factor_between_two_inner_levels_of_one_tile():
    context = tune_context(te_module("GMM", 0))
    (sch, *_) = measured_like_traces(context)
    postprocs = context.space_generator.postprocs
    factor = DecisionSpace(context.mod, sch.trace, postprocs)
    space = DecisionSpace(context.mod, sch.trace, postprocs, tile_moves="transfer")
    # The same coordinates as factor moves, plus pairs within one tile only.
    assert space.coordinates == factor.coordinates and factor.pairs == ()
    assert space.pairs
    origin = _tile_decisions(space.trace_of(space.origin))
    transfers = 0
    for up, down in space.pairs:
        assert space.coordinates[up].inst_index == space.coordinates[down].inst_index
        for delta in (1, -1):
            point = list(space.origin)
            point[up] += delta
            point[down] -= delta
            if not all(0 <= x < n for x, n in zip(point, space.sizes)):
                continue
            if not space.is_valid(point):
                continue
            moved = _tile_decisions(space.trace_of(point))
            changed = [(a, b) for a, b in zip(origin, moved) if a != b]
            assert len(changed) == 1 and _prod(changed[0][0]) == _prod(changed[0][1])
            # Both paired levels changed (the outermost absorbs what their product changed).
            before, after = changed[0]
            assert sum(x != y for x, y in zip(before[1:], after[1:])) == 2
            assert space.replay(point) is not None
            transfers += 1
    assert transfers > 0


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


def test_tiling_moves_walk_only_valid_factorizations():
    context = tune_context(te_module("GMM", 0))
    (sch, *_) = measured_like_traces(context)
    space = DecisionSpace(
        context.mod, sch.trace, context.space_generator.postprocs, tile_moves="tiling"
    )
    tiles = [c for c in space.coordinates if c.kind == "SamplePerfectTile"]
    assert tiles
    for coord in tiles:
        for tiling in coord.values:
            assert _prod(tiling) == 128 and tiling[-1] <= 64
    assert all(space.is_valid(p) for _, p in unit_neighbours(space))


def test_traces_of_one_structure_share_a_box():
    """Another measured trace of the same design space is a point of this space's box."""
    context = tune_context(te_module("GMM", 0))
    schedules = measured_like_traces(context, count=8)
    space = DecisionSpace(context.mod, schedules[0].trace, context.space_generator.postprocs)
    matched = 0
    for sch in schedules:
        other = DecisionSpace(context.mod, sch.trace, context.space_generator.postprocs)
        if other.coordinates != space.coordinates:
            continue
        matched += 1
        # The other trace's point, replayed in this space, is the program that was measured.
        assert _tvm.module_hash(space.replay(other.origin).mod) == _tvm.module_hash(sch.mod)
    assert matched >= 2


def test_cuda_matmul_neighbours_cover_thread_and_tile_decisions():
    """A CUDA target needs no GPU to generate and replay schedules."""
    context = tune_context(te_module("GMM", 0), target=CUDA_TARGET)
    postprocs = context.space_generator.postprocs
    kinds_valid = set()
    for sch in measured_like_traces(context):
        space = DecisionSpace(context.mod, sch.trace, postprocs, seed=1)
        assert {"SamplePerfectTile", "SampleCategorical"} <= {c.kind for c in space.coordinates}
        hashes = {_tvm.module_hash(space.replay(space.origin).mod)}
        for dim, point in unit_neighbours(space):
            neighbour = space.replay(point) if space.is_valid(point) else None
            if neighbour is None:
                # Moves past the GPU's limits (threads per block, shared memory) are refused
                # by the VerifyGPUCode postprocessor: the strategy drops them unmeasured.
                continue
            module_hash = _tvm.module_hash(neighbour.mod)
            assert module_hash not in hashes
            hashes.add(module_hash)
            kinds_valid.add(space.coordinates[dim].kind)
    assert {"SamplePerfectTile", "SampleCategorical"} <= kinds_valid
