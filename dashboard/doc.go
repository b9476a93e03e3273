// Package dashboard is the live web page that a node serves on
// --dashboard-addr (a worker's page says that it is not a manager): the managers with their Raft role, term and indexes, the
// quorum, each node's tasks as a grid, and the event timeline.
//
// It is just another client of the daemon's local Control API (the same
// calls as `shoal raft status`, `node ls`, `service ps` and `shoal events`)
// and keeps no state of its own between requests. Endpoints:
//
//	/            the page: one embedded HTML file, plain JS and CSS, no build step
//	/api/state   a JSON snapshot of the cluster (State)
//	/api/stream  server-sent events: "state" with a snapshot whenever an event
//	             arrives (debounced) and at least every Refresh, "event" with
//	             each cluster event for the timeline
//
// A node that is not a manager, or a cluster without a leader, still gets a
// page: the snapshot says what is missing and why, in words.
//
// It must not write to the cluster: the dashboard only looks.
package dashboard
