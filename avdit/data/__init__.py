"""Datasets: Bouncing Tones (procedural, exact) and folders of real videos cut into clips."""
