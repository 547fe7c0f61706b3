"""Architecture space: the op catalogue, the genotype, and the network built from it."""
