from neuraldbg.cli import main

raise SystemExit(main())
