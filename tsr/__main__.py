from tsr.cli import main

raise SystemExit(main())
