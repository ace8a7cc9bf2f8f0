"""`python -m training`: train, name and publish a segmentation model."""

from training.cli import main

raise SystemExit(main())
