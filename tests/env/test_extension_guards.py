"""Half-done extensions fail loudly: a judge dimension without its table entries, an
edge type without a rule in both implementations."""
import numpy as np
import pytest

from tbn_env.dimension_tables import check_dimension_tables
from tbn_env.dimensions import JUDGE_DIMENSIONS
from tbn_env.graph import ClientGraph
from tbn_env.kernel import CompiledGraph


def test_a_new_judge_dimension_names_every_table_it_is_missing_from():
    check_dimension_tables()   # today's tables are complete (also checked on `import tbn_env`)
    with pytest.raises(ImportError) as err:
        check_dimension_tables((*JUDGE_DIMENSIONS, "humour"))
    message = str(err.value)
    for table in ("data/rubric.toml [dimensions]", "buckets.py DIM_TO_BUCKET"):
        assert f"{table}" in message and "lacks humour" in message
    with pytest.raises(ImportError, match="loa.py DIM_TO_LOA.*names unknown artfulness|names unknown artfulness"):
        check_dimension_tables(JUDGE_DIMENSIONS[:-1])


def test_stage_weights_refuse_an_unknown_dimension():
    from tbn_env.reward import _weights
    with pytest.raises(ImportError, match="unknown judge dimensions \\['atunement'\\]"):
        _weights({"atunement": 1.5})


def test_an_unhandled_edge_type_raises_in_both_implementations():
    """Failed before: the edge was silently skipped by both the reference graph and the kernel."""
    graph = ClientGraph.default()
    src, dst = next((u, v) for u, v, e in graph.graph.edges(data=True) if e["type"] == "reinforcing")
    graph.graph.edges[src, dst]["type"] = "inhibitory"
    with pytest.raises(ValueError, match="edge type 'inhibitory' has no rule in the compiled kernel"):
        CompiledGraph(graph)
    zeros = np.zeros(len(JUDGE_DIMENSIONS))
    with pytest.raises(ValueError, match="edge type 'inhibitory' has no propagation rule"):
        graph.update(zeros + 1.0, zeros, "A", 1, 0.5)
