"""Demo data: the fictional 金河区 (Jinhe District) used for fixtures, demos and benchmarks."""
