"""Decision spaces of real traces from TVM design spaces."""

import pytest
from conftest import CUDA_TARGET, te_module, tune_context
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
    for sch in measured_like_traces(context):
        space = DecisionSpace(context.mod, sch.trace, postprocs, seed=1)
        origin = space.replay(space.origin)
        assert origin is not None
        # The origin replays to the very program that was measured.
        assert _tvm.module_hash(origin.mod) == _tvm.module_hash(sch.mod)
        hashes = {_tvm.module_hash(origin.mod)}
        for dim, point in unit_neighbours(space):
            coord = space.coordinates[dim]
            neighbour = space.replay(point)
            assert neighbour is not None, f"{coord.kind} neighbour {point} failed to replay"
            module_hash = _tvm.module_hash(neighbour.mod)
            if coord.kind != "Annotate":
                # A decision move always changes the program. (Parallel/vectorize limits can
                # alias: the strategy deduplicates those by structural hash before measuring.)
                assert module_hash not in hashes, f"{coord.kind} move {point} aliased"
            hashes.add(module_hash)
            kinds_seen.add(coord.kind)
    assert kinds_seen >= EXPECTED_KINDS[workload]


def test_tile_coordinates_hold_only_valid_factorizations():
    context = tune_context(te_module("GMM", 0))
    (sch, *_) = measured_like_traces(context)
    space = DecisionSpace(context.mod, sch.trace, context.space_generator.postprocs)
    tiles = [c for c in space.coordinates if c.kind == "SamplePerfectTile"]
    assert tiles
    for coord in tiles:
        for tiling in coord.values:
            product = 1
            for factor in tiling:
                product *= factor
            assert product == 128 and tiling[-1] <= 64


def test_encode_maps_a_trace_of_the_same_structure_to_its_point():
    context = tune_context(te_module("GMM", 0))
    schedules = measured_like_traces(context, count=8)
    space = DecisionSpace(context.mod, schedules[0].trace, context.space_generator.postprocs)
    matched = 0
    for sch in schedules:
        other = DecisionSpace(context.mod, sch.trace, context.space_generator.postprocs)
        point = space.encode(sch.trace)
        if other.key != space.key:
            assert point is None
            continue
        matched += 1
        assert point == other.origin
        assert _tvm.module_hash(space.replay(point).mod) == _tvm.module_hash(sch.mod)
    assert matched >= 1


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
            neighbour = space.replay(point)
            if neighbour is None:
                # Moves past the GPU's limits (threads per block, shared memory) are refused
                # by the VerifyGPUCode postprocessor: the strategy drops them unmeasured.
                continue
            module_hash = _tvm.module_hash(neighbour.mod)
            assert module_hash not in hashes
            hashes.add(module_hash)
            kinds_valid.add(space.coordinates[dim].kind)
    assert {"SamplePerfectTile", "SampleCategorical"} <= kinds_valid
