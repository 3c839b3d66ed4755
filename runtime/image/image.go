//go:build linux

// Package image is the engine's image store: a content-addressed blob store
// (manifests, configs, compressed layers by digest), the references that
// name images, and the registry operations on them (pull, push), plus
// save/load of docker-archive tarballs. Unpacked layers live in the
// snapshot store.
//
// Layout under the store's root:
//
//	blobs/sha256/<hex>     content by digest (verified before it is named)
//	images/<id-hex>.json   one record per image: its layers and manifest
//	repositories.json      references (tags and digests) → image ID
//
// Every file is written atomically and in dependency order (blobs, then
// unpacked layers, then the image record, then references), so a crash
// leaves at worst unreferenced content, which New collects.
package image

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/net/http/httpproxy"

	"github.com/berth-dev/berth/runtime/errdefs"
	eventbus "github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/fsutil"
	"github.com/berth-dev/berth/runtime/keylock"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// Image is what the rest of the engine needs to know about a local image.
type Image struct {
	ID          string   // "sha256:…" digest of the config blob
	RepoTags    []string // normalized: "docker.io/library/busybox:latest"
	RepoDigests []string // "docker.io/library/busybox@sha256:…"
	Config      *v1.ConfigFile
	ChainID     string // chain ID of the top layer; "" for an image with no layers
	Size        int64  // unpacked size of all layers
	Created     time.Time
	LastTagTime time.Time
	// Parent is the image this one was committed over (docker commit, a
	// build step); "" for pulled and loaded images.
	Parent string
}

// Options configure a Store.
type Options struct {
	Root      string          // directory for blobs, records and references
	Snapshots *snapshot.Store // where layers are unpacked
	Events    *eventbus.Bus   // image events are published here (may be nil)
	// InsecureRegistries are reached over plain HTTP ("host:port" or
	// "host"); loopback registries always are.
	InsecureRegistries []string
	// Mirrors are registry mirrors (http(s)://host[:port]) tried in order
	// before Docker Hub for its images; an http:// mirror is reached over
	// plain HTTP, as the user said.
	Mirrors []string
	// Proxy is the HTTP(S) proxy for every registry call (pulls, pushes,
	// logins, search); the zero value is none.
	Proxy httpproxy.Config
	// DockerHub, for tests only, is the registry (host:port) that stands
	// for docker.io, which tests here cannot reach.
	DockerHub string
	// InUse reports the containers using an image, so that removing it can
	// be refused (the engine wires it to the container manager).
	InUse func(imageID string) (running, stopped []string)
	Log   *slog.Logger
}

// Store is the local image store. It is safe for concurrent use.
type Store struct {
	opts    Options
	content *content
	snaps   *snapshot.Store
	log     *slog.Logger

	mu     sync.RWMutex
	images map[string]*entry
	refs   *refStore
	leases map[string]int // chain IDs and blob digests an operation in flight needs

	fetches keylock.Map // per blob digest: one download at a time

	labelsMu sync.Mutex
	labels   map[string]map[string]string // image ID → its labels, for events
}

// noteLabels records e's labels for its events.
func (s *Store) noteLabels(e *entry) {
	if e.cfg == nil || len(e.cfg.Config.Labels) == 0 {
		return
	}
	s.labelsMu.Lock()
	if s.labels == nil {
		s.labels = map[string]map[string]string{}
	}
	s.labels[e.rec.ID] = e.cfg.Config.Labels
	s.labelsMu.Unlock()
}

// record is what is kept on disk for one image.
type record struct {
	ID          string        `json:"id"`
	Manifest    string        `json:"manifest,omitempty"` // distribution manifest blob, when there is one
	Layers      []layerRecord `json:"layers"`
	Parent      string        `json:"parent,omitempty"` // see Image.Parent
	LastTagTime time.Time     `json:"lastTagTime,omitzero"`
}

type layerRecord struct {
	Digest    string `json:"digest"` // blob as stored (compressed or not)
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"` // of the blob
	DiffID    string `json:"diffID"`
}

// entry is an image in memory: its record and what is derived from it.
type entry struct {
	rec     record
	cfg     *v1.ConfigFile
	chainID string
	size    int64
}

// New opens the store at opts.Root, loading every image, and collects
// content a crash left unreferenced.
func New(opts Options) (*Store, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Snapshots == nil {
		return nil, fmt.Errorf("image store: no snapshot store")
	}
	if err := os.MkdirAll(filepath.Join(opts.Root, "images"), 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	c, err := newContent(filepath.Join(opts.Root, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	refs, err := loadRefs(filepath.Join(opts.Root, "repositories.json"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{opts: opts, content: c, snaps: opts.Snapshots, log: opts.Log,
		images: map[string]*entry{}, refs: refs, leases: map[string]int{}}
	ents, err := os.ReadDir(filepath.Join(opts.Root, "images"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	for _, de := range ents {
		if !strings.HasSuffix(de.Name(), ".json") || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		e, err := s.loadEntry(filepath.Join(opts.Root, "images", de.Name()))
		if err != nil {
			// An image whose content is gone cannot be used; say so and
			// drop it rather than refuse to start.
			s.log.Warn("dropping unreadable image record", "file", de.Name(), "err", err)
			os.Remove(filepath.Join(opts.Root, "images", de.Name()))
			continue
		}
		s.images[e.rec.ID] = e
		s.noteLabels(e)
	}
	// References to images that did not survive.
	changed := false
	for ref, id := range refs.refs {
		if s.images[id] == nil {
			delete(refs.refs, ref)
			changed = true
		}
	}
	if changed {
		if err := refs.save(); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	_, err = s.collectLocked()
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("image store: collecting unused content", "err", err)
	}
	return s, nil
}

// SetInUse sets the callback that reports containers using an image.
func (s *Store) SetInUse(f func(imageID string) (running, stopped []string)) {
	s.mu.Lock()
	s.opts.InUse = f
	s.mu.Unlock()
}

func (s *Store) recordPath(id string) string {
	return filepath.Join(s.opts.Root, "images", strings.TrimPrefix(id, "sha256:")+".json")
}

func (s *Store) loadEntry(path string) (*entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	if !snapshot.ValidDigest(rec.ID) {
		return nil, fmt.Errorf("bad image ID %q", rec.ID)
	}
	return s.newEntry(rec)
}

// newEntry derives an entry from a record: the config (read from the blob
// store) and the chain, which must be unpacked.
func (s *Store) newEntry(rec record) (*entry, error) {
	raw, err := s.content.read(rec.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.ID, err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.ID, err)
	}
	e := &entry{rec: rec, cfg: cfg}
	for _, l := range rec.Layers {
		e.chainID = snapshot.ChainID(e.chainID, l.DiffID)
		layer, err := s.snaps.Layer(e.chainID)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", rec.ID, err)
		}
		e.size += layer.Size
	}
	return e, nil
}

func (s *Store) image(e *entry) *Image {
	tags, digests := s.refs.of(e.rec.ID)
	return &Image{ID: e.rec.ID, RepoTags: tags, RepoDigests: digests, Config: e.cfg, ChainID: e.chainID,
		Size: e.size, Created: e.cfg.Created.Time, LastTagTime: e.rec.LastTagTime, Parent: e.rec.Parent}
}

// The ID patterns are compiled on first use, not at package init: every
// container start re-executes this binary as the container's init, which
// runs all package initializers and never resolves an image.
var (
	fullIDRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(sha256:)?([a-f0-9]{64})$`) })
	shortIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(sha256:)?([a-f0-9]{1,63})$`) })
)

// Get finds an image by name[:tag], name@digest, full ID or unique ID
// prefix. A missing image is errdefs.NotFound ("No such image: busybox:latest").
func (s *Store) Get(ref string) (*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.resolveLocked(ref)
	if err != nil {
		return nil, err
	}
	return s.image(e), nil
}

func (s *Store) resolveLocked(ref string) (*entry, error) {
	if ref == "" {
		return nil, errdefs.InvalidArgument("no image name given")
	}
	if m := fullIDRE().FindStringSubmatch(ref); m != nil {
		if e := s.images["sha256:"+m[2]]; e != nil {
			return e, nil
		}
		return nil, notFound(ref)
	}
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		if id, ok := s.refs.refs[reference.TagNameOnly(named).String()]; ok {
			if e := s.images[id]; e != nil {
				return e, nil
			}
		}
	}
	if m := shortIDRE().FindStringSubmatch(ref); m != nil {
		var found *entry
		for id, e := range s.images {
			if strings.HasPrefix(id, "sha256:"+m[2]) {
				if found != nil {
					return nil, errdefs.NotFound("No such image: %s (ambiguous: several images have IDs starting with it)", ref)
				}
				found = e
			}
		}
		if found != nil {
			return found, nil
		}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return nil, errdefs.InvalidArgument("invalid reference format: %q", ref)
	}
	return nil, notFound(ref)
}

// List returns every image, newest first.
func (s *Store) List() []*Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Image, 0, len(s.images))
	for _, e := range s.images {
		out = append(out, s.image(e))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Tag points reference target at the image src names.
func (s *Store) Tag(src, target string) error {
	named, err := parseNamed(target)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return errdefs.InvalidArgument("refusing to create a tag with a digest reference")
	}
	named = reference.TagNameOnly(named)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.resolveLocked(src)
	if err != nil {
		return err
	}
	if err := s.setRefsLocked(e, named.String()); err != nil {
		return err
	}
	s.event(events.ActionTag, e.rec.ID, named.String())
	return nil
}

// setRefsLocked points refs at e and records the tag time.
func (s *Store) setRefsLocked(e *entry, refs ...string) error {
	tagged := false
	for _, r := range refs {
		s.refs.refs[r] = e.rec.ID
		tagged = tagged || !strings.Contains(r, "@")
	}
	if err := s.refs.save(); err != nil {
		return err
	}
	if tagged {
		e.rec.LastTagTime = time.Now().UTC()
		return s.writeRecordLocked(e.rec)
	}
	return nil
}

func (s *Store) writeRecordLocked(rec record) error {
	if err := fsutil.WriteJSONAtomic(s.recordPath(rec.ID), rec, 0o600); err != nil {
		return fmt.Errorf("save image %s: %w", rec.ID, err)
	}
	return nil
}

// commit adds (or refreshes) an image whose blobs and layers are in place
// and points refs at it. It reports whether a tag moved to this image.
func (s *Store) commit(rec record, refs ...string) (img *Image, tagMoved bool, err error) {
	e, err := s.newEntry(rec)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.images[rec.ID]; old != nil {
		// Keep what the existing record has (its manifest and layer
		// blobs may be referenced already).
		e = old
		if e.rec.Manifest == "" && rec.Manifest != "" {
			e.rec.Manifest, e.rec.Layers = rec.Manifest, rec.Layers
		}
	}
	if err := s.writeRecordLocked(e.rec); err != nil {
		return nil, false, err
	}
	s.images[rec.ID] = e
	s.noteLabels(e)
	for _, r := range refs {
		if !strings.Contains(r, "@") && s.refs.refs[r] != rec.ID {
			tagMoved = true
		}
	}
	if len(refs) > 0 {
		if err := s.setRefsLocked(e, refs...); err != nil {
			return nil, false, err
		}
	}
	return s.image(e), tagMoved, nil
}

// lease keeps chain IDs and blobs from being collected while an operation
// that has not committed its image yet uses them.
func (s *Store) lease(ids ...string) (release func()) {
	s.mu.Lock()
	for _, id := range ids {
		s.leases[id]++
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		for _, id := range ids {
			if s.leases[id]--; s.leases[id] <= 0 {
				delete(s.leases, id)
			}
		}
		s.mu.Unlock()
	}
}

// collectLocked removes unpacked layers and blobs no image (nor operation
// in flight, nor container) needs, returning the chain IDs removed.
func (s *Store) collectLocked() ([]string, error) {
	var keep []string
	blobs := map[string]bool{}
	for id, e := range s.images {
		keep = append(keep, e.chainID)
		blobs[id] = true
		if e.rec.Manifest != "" {
			blobs[e.rec.Manifest] = true
		}
		for _, l := range e.rec.Layers {
			blobs[l.Digest] = true
		}
	}
	for id := range s.leases {
		keep = append(keep, id)
		blobs[id] = true
	}
	removed, err := s.snaps.GC(keep)
	if err != nil {
		return removed, err
	}
	all, err := s.content.list()
	if err != nil {
		return removed, err
	}
	for _, d := range all {
		if !blobs[d] {
			if err := s.content.remove(d); err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// event publishes an image event; ref (when set) is the reference acted on.
func (s *Store) event(action events.Action, id, ref string) {
	if s.opts.Events == nil {
		return
	}
	attrs := map[string]string{}
	// The image's labels, as dockerd adds them (from their own map:
	// callers may hold s.mu or not).
	s.labelsMu.Lock()
	maps.Copy(attrs, s.labels[id])
	s.labelsMu.Unlock()
	if ref != "" {
		attrs["name"] = Familiar(ref)
	}
	s.opts.Events.Publish(events.ImageEventType, action, id, attrs)
}
