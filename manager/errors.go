package manager

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/raftstore"
)

// ErrNotManager is what a worker answers to cluster API calls (Docker's words).
var ErrNotManager = status.Error(codes.FailedPrecondition,
	"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. "+
		"Please run this command on a manager node or promote the current node to a manager.")

// toStatus gives an error its gRPC code at the API boundary.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, raftstore.ErrNoLeader):
		return status.Error(codes.Unavailable, raftstore.ErrNoLeader.Error())
	case errors.Is(err, raftstore.ErrShutdown):
		return status.Error(codes.Unavailable, "this manager is shutting down; retry on another")
	case errors.Is(err, raftstore.ErrRemoved):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, raftstore.ErrNotLeader):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, raftstore.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, raftstore.ErrConflict):
		return status.Errorf(codes.Aborted, "%v: other changes kept getting in; run the command again", err)
	case errors.Is(err, raftstore.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, raftstore.ErrLastManager), errors.Is(err, raftstore.ErrQuorumLoss):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}
