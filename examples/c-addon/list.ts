// The same description as list.json, written with the TypeScript builders: either one generates the header and
// the accessors (the example's test checks that both give the same files).
import { opaque, ptr, struct, t } from 'pymalloc/codegen';

const listNodeRef = opaque('list_node'); // the struct points to itself: name it before it is complete

export const list_node = struct('list_node', {
  next: ptr(listNodeRef), // a real address in the heap, NULL at the end of the list
  value: t.int32, // written by JavaScript
  rank: t.uint32, // written by C: the node's position from the head
  prefix: t.float64, // written by C: the sum of the values up to and including this node
});
