"""A lab of benchmark devices on a Ray cluster: nodes advertise their devices as Ray resources, and a suite's
cells run on the nodes that hold their devices. Ray is imported only by the modules that need it (the `cluster`
extra), never by a local run."""
