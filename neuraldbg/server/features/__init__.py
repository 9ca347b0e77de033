"""One module per LSP feature: each handler takes the
:class:`~neuraldbg.server.state.ServerState` and the request's params and
goes document -> session -> result. ``neuraldbg.server.wiring`` connects the
background events (trace frames, debugger stops, typing pauses) to them."""
