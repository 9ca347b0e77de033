"""Simulations over a token backend (the oracle-forced CWM, usually), built
the way the engine factory builds them for a model backend."""

from __future__ import annotations

from neuraldbg.backends.base import Sampling, TokenBackend
from neuraldbg.simulation.model_engine import ModelEngine
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text

# A loop with a branch: long enough to step around in, short enough for the tiny model on a CPU.
LOOP = '''\
def count(xs):
    total = 0
    for x in xs:
        if x % 2 == 0:
            total += x
        else:
            total -= 1
    return total
'''


def model_sim(backend: TokenBackend, source: str, qualname: str, call: str, *,
              sampling: Sampling = Sampling(), kind: str = "local") -> Simulation:
    index = index_text(source)
    fn = index.function(qualname)
    assert fn is not None, qualname
    tok = backend.tokenizer  # type: ignore[attr-defined]
    engine = ModelEngine(backend, tok, source=source, function=fn, functions=index.functions, call=call,
                         sampling=sampling, backend_kind=kind)
    return Simulation(engine, function=qualname, call=call)
