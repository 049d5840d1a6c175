"""Small helpers the rest builds on: atomic writes, devices, seeding, resume checks, torch.distributed, learning-rate schedules."""
