package api

// MDLeader is the gRPC trailer in which a manager that is not the leader
// names the leader's address, so that an agent can go there directly.
const MDLeader = "shoal-leader"
