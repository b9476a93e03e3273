// Package api is shoal's protobuf contract: the cluster objects kept in
// Raft, the one Command envelope that changes them, and the gRPC services
// of the control socket and the cluster port. shoal.pb.go and
// shoal_grpc.pb.go are generated from shoal.proto by `make generate`
// (Debian's protoc, protoc-gen-go, protoc-gen-go-grpc); do not edit them.
package api
