from neuraldbg.cli.main import main

raise SystemExit(main())
