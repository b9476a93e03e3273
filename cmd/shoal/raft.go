package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/api"
)

func newRaftCommand(c *cli) *cobra.Command {
	return newGroupCommand("raft", "Show what Raft is doing on the managers", newRaftStatusCommand(c))
}

func newRaftStatusCommand(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show every manager's Raft state, the quorum and how many managers may fail",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			resp, err := d.Control.RaftStatus(cmd.Context(), &api.RaftStatusRequest{})
			if err != nil {
				return err
			}
			if err := writeListing(c.out, raftListing, format, false, raftRows(resp, timeNow())); err != nil {
				return err
			}
			if format == "" || format == tableFormatKey {
				fmt.Fprintln(c.out)
				fmt.Fprintln(c.out, quorumLine(resp))
			}
			return nil
		},
	}
	addListFormatFlag(cmd.Flags(), &format)
	return cmd
}

var raftListing = listing{
	table: "table {{.Node}} {{if .Self}}*{{else}} {{ end }}\t{{.Address}}\t{{.State}}\t{{.Term}}\t{{.LastIndex}}\t" +
		"{{.CommitIndex}}\t{{.AppliedIndex}}\t{{.LastContact}}\t{{.Voter}}",
	headers: map[string]string{
		"Node":         "NODE",
		"Self":         "",
		"Address":      "ADDRESS",
		"State":        "STATE",
		"Term":         "TERM",
		"LastIndex":    "LAST INDEX",
		"CommitIndex":  "COMMIT",
		"AppliedIndex": "APPLIED",
		"LastContact":  "LAST CONTACT",
		"Voter":        "VOTER",
	},
}

// raftRow is one manager in `raft status`.
type raftRow struct {
	Node         string // hostname, or ID when unknown
	ID           string
	Self         bool
	Address      string
	State        string // Leader, Follower, Candidate; Unreachable when it can't be asked
	Term         string
	LastIndex    string
	CommitIndex  string
	AppliedIndex string
	LastContact  string // with the leader, as that manager last said
	Voter        bool
}

func (r raftRow) MarshalJSON() ([]byte, error) { return marshalRow(r) }

func raftRows(resp *api.RaftStatusResponse, now time.Time) []raftRow {
	var rows []raftRow
	for _, m := range resp.GetMembers() {
		r := raftRow{Node: m.GetHostname(), ID: m.GetNodeId(), Self: m.GetNodeId() == resp.GetSelfId(), Address: m.GetAddr(), Voter: m.GetVoter()}
		if r.Node == "" {
			r.Node = m.GetNodeId()
		}
		info := m.GetRaft()
		switch {
		case info == nil:
			r.State, r.Term, r.LastIndex, r.CommitIndex, r.AppliedIndex, r.LastContact = "Unreachable", "-", "-", "-", "-", "-"
		default:
			r.State = info.GetState()
			if !m.GetReachable() {
				r.State = "Unreachable (was " + r.State + ")"
			}
			r.Term = fmt.Sprint(info.GetTerm())
			r.LastIndex = fmt.Sprint(info.GetLastLogIndex())
			r.CommitIndex = fmt.Sprint(info.GetCommitIndex())
			r.AppliedIndex = fmt.Sprint(info.GetAppliedIndex())
			r.LastContact = lastContact(info, m.GetSeenUnixNano(), now)
			if !m.GetReachable() && m.GetSeenUnixNano() != 0 {
				r.LastContact = "no answer for " + now.Sub(time.Unix(0, m.GetSeenUnixNano())).Round(time.Second).String()
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// lastContact says how long before the answer a manager had last heard
// from a leader; a leader is its own contact.
func lastContact(info *api.RaftInfo, seen int64, now time.Time) string {
	switch {
	case info.GetState() == "Leader":
		return "-"
	case info.GetLastContactUnixNano() == 0:
		return "never"
	}
	at := now
	if seen != 0 {
		at = time.Unix(0, seen)
	}
	return at.Sub(time.Unix(0, info.GetLastContactUnixNano())).Round(time.Millisecond).String() + " ago"
}

// quorumLine sums up what the cluster can bear right now.
func quorumLine(resp *api.RaftStatusResponse) string {
	voters := 0
	for _, m := range resp.GetMembers() {
		if m.GetVoter() {
			voters++
		}
	}
	q, up := int(resp.GetQuorum()), int(resp.GetReachable())
	if up < q {
		verb := "come"
		if q-up == 1 {
			verb = "comes"
		}
		return fmt.Sprintf("Quorum: %d of %d managers needed, %d reachable: NO QUORUM, writes fail until %d more %s back.", q, voters, up, q-up, verb)
	}
	return fmt.Sprintf("Quorum: %d of %d managers needed, %d reachable: %d more may fail.", q, voters, up, up-q)
}
