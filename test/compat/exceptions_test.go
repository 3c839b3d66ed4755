package compat_test

import (
	"regexp"
	"strings"
	"sync"
)

// exception is a documented difference in the JSON keys of a response:
// a key one engine sends and the other does not, for a reason that holds
// for every client. Exceptions are listed in docs/compat.md.
type exception struct {
	endpoint string // regular expression on "METHOD /path" ({} for IDs)
	key      string // regular expression on "path=kind"
	side     string // the engine that sends it: "berth", "dockerd" or "berth|dockerd"
	reason   string
}

// The reasons fall in a few kinds: a field newer API versions added (a
// current dockerd sends it at every version; dockerd 20.10 predates it), a
// field a current dockerd no longer sends (Berth answers as a current
// dockerd does), and facts of Berth's design.
const (
	newer   = "added to the API after 1.41: a current dockerd sends it at every API version; dockerd 20.10 predates it"
	removed = "dockerd 20.10 sends it; a current dockerd no longer does at any API version, and Berth answers as a current dockerd"
)

// Reasons scenarios give for intentional differences that are dockerd's
// own: where a current dockerd answers as Berth does and dockerd 20.10, the
// reference run here, did not.
const (
	current400 = "a current dockerd answers 400 (invalid parameter) here, as Berth does; dockerd 20.10 answered 500"
	atCreate   = "the request is checked at create, so nothing is left behind: Berth refuses the create (400); dockerd creates the container and refuses its start"
)

var exceptions = []exception{
	// Containers.
	{endpoint: `GET /containers/(\{\}/json|json)|GET /system/df`, key: `(\[\]\.|Containers\[\]\.)?NetworkSettings\.Networks\.[^.]+\.(DNSNames(\[\])?|GwPriority)=.*`, side: "berth",
		reason: "DNSNames (API 1.44) and GwPriority (1.48): " + newer},
	{endpoint: `GET /containers/\{\}/json`, key: `ExecIDs(\[\])?=.*`, side: "berth|dockerd",
		reason: "a health check's probe in progress: dockerd runs probes as execs and lists them; Berth runs them apart from docker exec"},
	{endpoint: `GET /containers/\{\}/json`, key: `Config\.OnBuild=null`, side: "dockerd", reason: "an empty OnBuild: " + removed + " (omitted when empty)"},
	{endpoint: `GET /containers/\{\}/json`, key: `HostConfig\.KernelMemory(TCP)?=number`, side: "dockerd",
		reason: "kernel memory limits, deprecated in API 1.42 (the kernel dropped them): " + removed},
	{endpoint: `GET /containers/\{\}/json`, key: `NetworkSettings\.(Bridge|HairpinMode|LinkLocalIPv6Address|LinkLocalIPv6PrefixLen|SecondaryIPAddresses|SecondaryIPv6Addresses)=.*`, side: "dockerd",
		reason: "fields of the legacy network settings, always empty, removed in API 1.44: " + removed},
	{endpoint: `GET /containers/\{\}/json`, key: `NetworkSettings\.(EndpointID|Gateway|GlobalIPv6Address|GlobalIPv6PrefixLen|IPAddress|IPPrefixLen|IPv6Gateway|MacAddress)=.*`, side: "dockerd",
		reason: "the default bridge's settings at the top of NetworkSettings (API < 1.52): a current dockerd sends them only for a container on the default bridge, as Berth does; dockerd 20.10 sent them empty for the others"},
	{endpoint: `GET /containers/\{\}/json`, key: `HostConfig\.Runtime=string`, side: "berth",
		reason: "the runtime's name is recorded at create (\"runc\"); dockerd 20.10 filled it in at the first start"},
	{endpoint: `GET /events`, key: `Actor\.Attributes\.execDuration=string`, side: "berth", reason: "execDuration of die events (dockerd 23): " + newer},
	{endpoint: `POST /containers/\{\}/wait`, key: `Error=null`, side: "dockerd", reason: "Error when there is none: " + removed + " (omitted when empty)"},
	{endpoint: `GET /containers/\{\}/stats`, key: `blkio_stats\.[a-z_]+\[\](\..*)?=.*`, side: "berth|dockerd",
		reason: "the entries of the block I/O lists are what the kernel accounted for the container: data, not schema"},
	{endpoint: `GET /containers/\{\}/stats`, key: `os_type=string`, side: "berth", reason: "os_type: " + newer},
	{endpoint: `GET /containers/\{\}/stats`, key: `memory_stats\.stats\.[a-z_]+=number`, side: "berth",
		reason: "Berth reports every counter of the cgroup's memory.stat; dockerd 20.10's containerd reads a fixed older subset (clients read counters by name)"},

	// Images.
	{endpoint: `GET /images/\{\}/json`, key: `ContainerConfig\.(Cmd|Env|Labels(\..*)?|OnBuild)(\[\])?=.*`, side: "berth|dockerd",
		reason: "the config of the container an image step was committed from (deprecated, gone in API 1.45): Berth's builder and commit record none, so it is shown empty"},

	// System.
	{endpoint: `GET /info`, key: `KernelMemory(TCP)?=bool`, side: "dockerd", reason: "kernel memory limit support: " + removed},
	{endpoint: `GET /info`, key: `Runtimes\.(io\.containerd\..*|runc\.path=string)`, side: "dockerd",
		reason: "containerd's shims and the runc binary: Berth runs containers with runc's libcontainer inside the engine, with no containerd and no runc binary to name"},
	{endpoint: `GET /info`, key: `CDISpecDirs=.*`, side: "berth", reason: "CDISpecDirs (API 1.45): " + newer},
	{endpoint: `POST /auth`, key: `IdentityToken=string`, side: "dockerd", reason: "an empty IdentityToken: " + removed + " (omitted when empty)"},

	{endpoint: `GET /system/df`, key: `BuilderSize=number`, side: "dockerd", reason: "BuilderSize, deprecated for BuildCache: " + removed},
	{endpoint: `POST /images/\{\}/push|POST /images/create`, key: `progressDetail\.(current|total)=number`, side: "berth|dockerd",
		reason: "the bytes a transfer reports depend on what the registry already holds and on chunking; every client treats them as optional"},

	// Networks and volumes.
	{endpoint: `GET /networks`, key: `\[\]\.Containers=.*`, side: "dockerd",
		reason: "a network's containers in the list (API 1.28 on: only in a network's inspect): " + removed},
	{endpoint: `GET /networks(/\{\})?`, key: `(\[\]\.)?EnableIPv4=bool`, side: "berth", reason: "EnableIPv4 (API 1.47): " + newer},

	// Content types.
	{endpoint: `GET /containers/\{\}/logs`, key: `Content-Type=application/vnd\.docker\.raw-stream`, side: "berth",
		reason: "a current dockerd names the logs stream application/vnd.docker.raw-stream below API 1.42 (multiplexed-stream from 1.42 without a TTY); dockerd 20.10 sends no Content-Type"},
	{endpoint: `GET /containers/\{\}/logs`, key: `Content-Type=`, side: "dockerd", reason: "see the logs stream's content type"},
	{endpoint: `GET /containers/\{\}/export`, key: `Content-Type=application/x-tar`, side: "berth",
		reason: "Berth names the archive it sends; dockerd sets no type (Go names it application/octet-stream)"},
	{endpoint: `GET /containers/\{\}/export`, key: `Content-Type=application/octet-stream`, side: "dockerd", reason: "see the export's content type"},
}

var (
	exceptionMu  sync.Mutex
	exceptionRes = map[*exception][2]*regexp.Regexp{}
)

// exceptionFor returns the reason of the exception that covers key sent by
// side only, or "".
func exceptionFor(endpoint, key, side string) string {
	exceptionMu.Lock()
	defer exceptionMu.Unlock()
	for i := range exceptions {
		ex := &exceptions[i]
		if !strings.Contains("|"+ex.side+"|", "|"+side+"|") {
			continue
		}
		res, ok := exceptionRes[ex]
		if !ok {
			res = [2]*regexp.Regexp{regexp.MustCompile("^(" + ex.endpoint + ")$"), regexp.MustCompile("^(" + ex.key + ")$")}
			exceptionRes[ex] = res
		}
		if res[0].MatchString(endpoint) && res[1].MatchString(key) {
			return ex.reason
		}
	}
	return ""
}

// normalizations are the rewritings applied to both engines' answers before
// they are compared (listed in docs/compat.md).
var normalizations = []string{
	"IDs (12 to 64 hex digits) in keys, in build output and in request paths become placeholders; the registry's port in build output too.",
	"Classic build output: dockerd 20.10 commits a step that only changes the config (ENV, LABEL, CMD …) through a container it creates and removes (` ---> Running in …`, `Removing intermediate container …`); Berth commits it without one. Those two lines of such a step are left out; every other line is compared.",
	"Events are compared as the sequence of `Type Action` (with the scenario's container named), plus the keys of every event.",
	"Image archives (`docker save`) are compared by what a client reads: manifest.json's tags and layer count, and whether every file it names is there.",
}
