"""`compiled_pack.leaf`: compiled code without reference counts refuses to allocate."""
import numpy as np
import pytest
from numba.core.errors import TypingError

from tbn_env.compiled_pack import leaf


def test_a_leaf_writes_the_arrays_it_is_handed():
    @leaf()
    def doubled(values, out):
        for i in range(values.shape[0]):
            out[i] = 2.0 * values[i]

    out = np.empty(3)
    doubled(np.arange(3.0), out)
    assert out.tolist() == [0.0, 2.0, 4.0]


def test_a_leaf_that_allocates_does_not_compile():
    @leaf()
    def allocating(values):
        scratch = np.empty(values.shape[0])
        scratch[:] = values
        return scratch.sum()

    with pytest.raises(TypingError):
        allocating(np.arange(3.0))
