"""The async shell around the pure core: sequencer, clock, feed, agents, funding, fan-out."""
