# Berth build. `make up` builds and starts Berth and runs the bundled hello
# image; `make test` runs every test (as root; parts that need root, a VM
# or a window skip with the reason when they cannot run).
# Go as Debian machines here have it (/usr/local/go), whatever the caller's PATH.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     ?= $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PKG     := github.com/berth-dev/berth

# berth-agent needs cgo (libcontainer's nsenter) and is linked statically so it
# runs as /init in the VM with no libc around it.
AGENT_TAGS    := netgo,osusergo,seccomp
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD_TIME ?= $(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
AGENT_LDFLAGS := -s -w -extldflags "-static" -X $(PKG)/guest-agent/engineapi.Version=$(VERSION) \
	-X $(PKG)/guest-agent/engineapi.GitCommit=$(COMMIT) -X $(PKG)/guest-agent/engineapi.BuildTime=$(BUILD_TIME)
CLI_LDFLAGS   := -s -w -X $(PKG)/app/cli.Version=$(VERSION)

# Fuzz time per target in `make test` (CI runs them briefly).
FUZZTIME ?= 10s

# The desktop window (Wails v2, WebKitGTK 4.1 on Linux) embeds frontend/dist.
DESKTOP_TAGS := desktop,production,webkit2_41

.PHONY: cross cross-windows cross-darwin cross-arm64 package
.PHONY: all deps build test test-go test-frontend fuzz bench bench-vm guest guest-lock hello up clean desktop frontend bindings compat-doc FORCE

all: build

build: $(BIN)/berth-agent $(BIN)/berth-buildkitd $(BIN)/berth-init $(BIN)/berth

$(BIN)/berth-agent: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -tags $(AGENT_TAGS) -ldflags '$(AGENT_LDFLAGS)' -o $@ ./guest-agent

# The BuildKit builder the engine starts on demand (a process of its own, so
# BuildKit's code never runs in the engine or a container's init); built as
# the agent is (its RUN steps get the same seccomp profile).
$(BIN)/berth-buildkitd: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -tags $(AGENT_TAGS) -ldflags '-s -w -extldflags "-static"' -o $@ ./guest-agent/buildkitd

# PID 1 of the VM, the initramfs' /init: pure Go, static, small.
INIT_LDFLAGS := -s -w -X main.version=$(VERSION)
$(BIN)/berth-init: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(AGENT_TAGS) -ldflags '$(INIT_LDFLAGS)' -o $@ ./guest-agent/init

$(BIN)/berth: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(CLI_LDFLAGS)' -o $@ ./cmd/berth

# The VM's kernel, initramfs (/init is bin/berth-init) and system disk (the
# binaries build/guest/binaries.txt lists, from bin/) from pinned Debian
# packages, cached in build/guest/cache; see build/guest/main.go. Images in
# GUEST_IMAGES are preloaded on the VM's first boot.
HOST_ARCH    := $(shell $(GO) env GOARCH)
GUEST_ARCH   ?= $(HOST_ARCH)
GUEST_OUT    ?= $(CURDIR)/build/guest/out/$(GUEST_ARCH)
# Another architecture's guest (arm64 for Apple silicon) takes the
# cross-built binaries and hello image from bin/linux-ARCH (make cross).
ifeq ($(GUEST_ARCH),$(HOST_ARCH))
GUEST_BIN    := $(BIN)
GUEST_IMAGES ?= $(BIN)/hello.tar
else
GUEST_BIN    := $(BIN)/linux-$(GUEST_ARCH)
GUEST_IMAGES ?= $(BIN)/linux-$(GUEST_ARCH)/hello.tar
endif

GUEST_BINARIES := berth-init $(shell sed 's/\#.*//' build/guest/binaries.txt)

guest: $(addprefix $(GUEST_BIN)/,$(GUEST_BINARIES)) $(GUEST_IMAGES)
	$(GO) run ./build/guest -arch $(GUEST_ARCH) -bin $(GUEST_BIN) -out $(GUEST_OUT) \
		$(if $(GUEST_IMAGES),-images $(subst $(eval) ,$(comma),$(strip $(GUEST_IMAGES))))

# Re-resolve the guest packages to Debian's newest and rewrite guest.lock.
guest-lock: $(addprefix $(GUEST_BIN)/,$(GUEST_BINARIES))
	$(GO) run ./build/guest -arch $(GUEST_ARCH) -bin $(GUEST_BIN) -out $(GUEST_OUT) -update-lock

comma := ,

test: build guest desktop cross test-frontend test-go fuzz

test-go:
	BERTH_BIN=$(BIN) $(GO) test -tags seccomp -count=1 -timeout 45m ./...

# docs/compat.md from the differential suite (test/compat, part of test-go):
# Berth and a real dockerd (Debian's docker.io) answer the same requests.
compat-doc: build
	BERTH_BIN=$(BIN) $(GO) test -tags seccomp -count=1 -run '^TestCompat$$' ./test/compat -args -compat.doc $(CURDIR)/docs/compat.md

# Each fuzz target runs for FUZZTIME; `go test -fuzz` takes one target at a time.
# Tests build with -tags seccomp, as berth-agent does (runc's seccomp support).
fuzz:
	@set -e; for spec in $$($(GO) run ./internal/tools/fuzztargets); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -tags seccomp -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# frontend/node_modules follows package-lock.json exactly (npm ci).
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend: frontend/node_modules/.package-lock.json
	cd frontend && npm run build

desktop: $(BIN)/berth-desktop

$(BIN)/berth-desktop: frontend FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -tags $(DESKTOP_TAGS) -ldflags '-s -w' -o $@ .

test-frontend: frontend/node_modules/.package-lock.json
	cd frontend && npx vitest run

# Regenerates frontend/src/wailsjs (committed, so builds need no wails CLI):
# go install github.com/wailsapp/wails/v2/cmd/wails@v2.16.0
bindings:
	wails generate module -tags webkit2_41

bench: build guest desktop
	BERTH_BIN=$(BIN) $(GO) run ./internal/bench -out docs/benchmarks.md

# Only the VM section: boot times and QEMU's footprint.
bench-vm: build guest
	BERTH_BIN=$(BIN) $(GO) run ./internal/bench -out docs/benchmarks.md -only '^VM/'


# berth/hello, the image `make up` runs and the VM preloads: busybox from a
# pinned Debian package and a greeting, reproducible; see build/hello.
hello: $(BIN)/hello.tar

$(BIN)/hello.tar: build/hello/main.go build/hello/hello.lock
	$(GO) run ./build/hello -arch $(HOST_ARCH) -out $@

$(BIN)/linux-%/hello.tar: build/hello/main.go build/hello/hello.lock
	$(GO) run ./build/hello -arch $* -out $@

# Builds for the other platforms, from this Linux machine: Windows binaries
# (pure Go; `berth hostd` is part of berth.exe), a type-check of every
# macOS file (cgo cannot compile here: internal/crosscheck), and the arm64
# berth-agent and guest image for Apple silicon (needs arm64 in dpkg's
# architectures for the Debian packages; .ci/run adds it).
cross: cross-windows cross-darwin cross-arm64

WIN_BIN := $(BIN)/windows
# The window's icon, manifest and version come from a .syso the linker
# picks up in the main package's directory (internal/tools/winres).
cross-windows: frontend
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(CLI_LDFLAGS)' -o $(WIN_BIN)/berth.exe ./cmd/berth
	$(GO) run ./internal/tools/winres -version $(VERSION) -syso berth-desktop_windows_amd64.syso -ico $(WIN_BIN)/berth.ico
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -tags desktop,production -ldflags '-s -w -H windowsgui' -o $(WIN_BIN)/berth-desktop.exe .
	rm -f berth-desktop_windows_amd64.syso
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./app/... ./cmd/... ./vm/... ./installer/...
	GOOS=windows GOARCH=amd64 $(GO) vet ./vm/driver/... ./vm/wsl/... ./vm/vz/... ./internal/crosscheck/... ./installer/setup/...

cross-darwin: frontend
	$(GO) run ./internal/tools/crosscheck -test -goos darwin -goarch arm64,amd64 -tags desktop,production . ./app/... ./cmd/... ./vm/... ./installer/...

ARM64_BIN := $(BIN)/linux-arm64
cross-arm64: $(ARM64_BIN)/berth-agent $(ARM64_BIN)/berth-buildkitd $(ARM64_BIN)/berth-init
	$(MAKE) guest GUEST_ARCH=arm64

$(ARM64_BIN)/berth-agent: FORCE
	CC=aarch64-linux-gnu-gcc GOARCH=arm64 CGO_ENABLED=1 $(GO) build -trimpath -tags $(AGENT_TAGS) -ldflags '$(AGENT_LDFLAGS)' -o $@ ./guest-agent

$(ARM64_BIN)/berth-buildkitd: FORCE
	CC=aarch64-linux-gnu-gcc GOARCH=arm64 CGO_ENABLED=1 $(GO) build -trimpath -tags $(AGENT_TAGS) -ldflags '-s -w -extldflags "-static"' -o $@ ./guest-agent/buildkitd

$(ARM64_BIN)/berth-init: FORCE
	GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags $(AGENT_TAGS) -ldflags '$(INIT_LDFLAGS)' -o $@ ./guest-agent/init

# Installers into dist/: the .deb (nfpm) and the Windows setup (NSIS); the
# macOS .app/.dmg are made on a Mac (installer/macos).
package: build desktop cross guest
	$(GO) run ./installer/package -version $(VERSION) -bin $(BIN) -guest build/guest/out -out $(CURDIR)/dist

# `make up` on a fresh machine: the packages and modules first (deps.sh does
# nothing when all are there), then the build, then Berth itself.
deps:
	./scripts/deps.sh

up: deps
	$(MAKE) build hello guest
	./scripts/up.sh

clean:
	rm -rf $(BIN)
