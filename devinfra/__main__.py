from devinfra.cli import main

raise SystemExit(main())
