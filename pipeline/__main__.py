"""`python -m pipeline` runs the reviewscore command line."""

from pipeline.cli import main

main()
