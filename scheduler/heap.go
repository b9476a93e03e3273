package scheduler

import "container/heap"

// The heaps below hold node indices: a node's index is its rank by node ID
// in the batch, so comparing indices is the stable tie-break by node ID.

// loadHeap orders the nodes that pass the node-only filters by their active
// tasks in all, then by node ID. It remembers where each node sits so that a
// placement can move the node down. It lives for a whole batch.
type loadHeap struct {
	nodes    []*NodeInfo // every node of the batch, by ID
	items    []int32     // node indices, a binary min-heap
	pos      []int32     // pos[i] is node i's place in items, or -1
	frontier frontier    // scratch for leastLoaded
}

func newLoadHeap(nodes []*NodeInfo, eligible []int32) *loadHeap {
	h := &loadHeap{nodes: nodes, items: eligible, pos: make([]int32, len(nodes))}
	for i := range h.pos {
		h.pos[i] = -1
	}
	for p, i := range h.items {
		h.pos[i] = int32(p)
	}
	heap.Init(h)
	h.frontier.h = h
	return h
}

func (h *loadHeap) lessNode(i, j int32) bool {
	if a, b := h.nodes[i].Tasks, h.nodes[j].Tasks; a != b {
		return a < b
	}
	return i < j
}

func (h *loadHeap) Len() int           { return len(h.items) }
func (h *loadHeap) Less(a, b int) bool { return h.lessNode(h.items[a], h.items[b]) }
func (h *loadHeap) Swap(a, b int) {
	h.items[a], h.items[b] = h.items[b], h.items[a]
	h.pos[h.items[a]], h.pos[h.items[b]] = int32(a), int32(b)
}
func (h *loadHeap) Push(x any) {
	i := x.(int32)
	h.pos[i] = int32(len(h.items))
	h.items = append(h.items, i)
}
func (h *loadHeap) Pop() any {
	i := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	h.pos[i] = -1
	return i
}

// changed restores the order after node i's load changed.
func (h *loadHeap) changed(i int32) {
	if p := h.pos[i]; p >= 0 {
		heap.Fix(h, int(p))
	}
}

// leastLoaded calls visit for the k least loaded nodes that ok accepts, in
// order, or for all of them if fewer. It walks the heap best-first without
// changing it: a node's children are never less loaded than the node, so
// the frontier of unvisited children always holds the next node in order.
// The cost grows with k and the nodes ok rejects on the way, not with the
// size of the heap.
func (h *loadHeap) leastLoaded(k int, ok func(int32) bool, visit func(int32)) {
	f := &h.frontier
	f.places = f.places[:0]
	if len(h.items) > 0 {
		f.places = append(f.places, 0)
	}
	for k > 0 && len(f.places) > 0 {
		p := heap.Pop(f).(int32)
		if i := h.items[p]; ok(i) {
			visit(i)
			k--
		}
		for _, c := range [2]int32{2*p + 1, 2*p + 2} {
			if int(c) < len(h.items) {
				heap.Push(f, c)
			}
		}
	}
}

// frontier is a min-heap of places in a loadHeap, ordered by the nodes
// there.
type frontier struct {
	h      *loadHeap
	places []int32
}

func (f *frontier) Len() int { return len(f.places) }
func (f *frontier) Less(a, b int) bool {
	return f.h.lessNode(f.h.items[f.places[a]], f.h.items[f.places[b]])
}
func (f *frontier) Swap(a, b int) { f.places[a], f.places[b] = f.places[b], f.places[a] }
func (f *frontier) Push(x any)    { f.places = append(f.places, x.(int32)) }
func (f *frontier) Pop() any {
	p := f.places[len(f.places)-1]
	f.places = f.places[:len(f.places)-1]
	return p
}

// candidate is a node that may take the tasks of the service being placed,
// with copies of its counts, so that ranking reads no NodeInfo.
type candidate struct {
	service int // active tasks of the service on the node
	total   int // active tasks on the node
	node    int32
}

// spreadHeap ranks the candidates for one service as Swarm's spread does:
// fewest active tasks of the service, then fewest active tasks in all, then
// node ID. It lives for one run of tasks.
type spreadHeap struct {
	items []candidate
}

func (h *spreadHeap) Len() int { return len(h.items) }
func (h *spreadHeap) Less(a, b int) bool {
	x, y := &h.items[a], &h.items[b]
	if x.service != y.service {
		return x.service < y.service
	}
	if x.total != y.total {
		return x.total < y.total
	}
	return x.node < y.node
}
func (h *spreadHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *spreadHeap) Push(x any)    { h.items = append(h.items, x.(candidate)) }
func (h *spreadHeap) Pop() any {
	c := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return c
}
