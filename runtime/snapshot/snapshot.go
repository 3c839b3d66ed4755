//go:build linux

// Package snapshot keeps image layers unpacked on disk, one directory per
// layer chain, and assembles container root filesystems from them with
// overlayfs. A layer shared by several images is unpacked once. Unpacking
// is the security boundary for image content: see unpack.go.
package snapshot

// Store is the on-disk layer and rootfs store under one root directory.
type Store struct {
	root string
}

// Open creates or reopens the store at root.
func Open(root string) (*Store, error) {
	return &Store{root: root}, nil
}

// Contract used by the rest of the runtime (implemented in this package):
//
//	Apply(ctx, parentChainID string, diffID digest, layer io.Reader) (chainID string, err error)
//	    unpacks an uncompressed layer tar on top of its parent chain, verifying diffID;
//	    idempotent and safe under concurrent calls for the same chain.
//	Prepare(key, chainID string) (rootfs string, err error)
//	    creates (or re-mounts after an agent restart) a writable overlay for key
//	    (a container ID or build step) over chainID ("" = empty image) and returns its mount point.
//	Unmount(key string) error   // keeps the writable layer
//	Remove(key string) error    // unmounts and deletes the writable layer
//	Diff(key string, w io.Writer) (diffID digest, err error)
//	    writes the writable layer's changes as an OCI layer tar (whiteouts included).
