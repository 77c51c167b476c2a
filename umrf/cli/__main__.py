from umrf.cli import main

raise SystemExit(main())
