package container

import (
	"fmt"
	"math/rand/v2"
	"regexp"
)

// Generated names are adjective_surname, like dockerd's, from Berth's own
// lists: harbour moods and navigators, cartographers and oceanographers.
var (
	nameAdjectives = []string{
		"anchored", "brave", "breezy", "briny", "buoyant", "calm", "careful", "clever",
		"coastal", "daring", "deep", "distant", "drifting", "eager", "fearless", "fleet",
		"foggy", "gentle", "gleaming", "glad", "hardy", "hearty", "hopeful", "jolly",
		"keen", "kind", "leeward", "lively", "loyal", "lucid", "merry", "misty",
		"moored", "nautical", "nimble", "patient", "placid", "polar", "proud", "quiet",
		"rapid", "restless", "rolling", "salty", "seasoned", "serene", "silent", "sleek",
		"snug", "spirited", "starlit", "steady", "stormy", "sturdy", "sunny", "swift",
		"tidal", "trusty", "vivid", "wandering", "wary", "windward", "wise", "zealous",
	}
	nameSurnames = []string{
		"amundsen", "baffin", "ballard", "beaufort", "bering", "bougainville", "cabot", "cabral",
		"carson", "cartier", "champlain", "cook", "cousteau", "dampier", "darwin", "dias",
		"drake", "earle", "ekman", "fitzroy", "flinders", "franklin", "frobisher", "gagarin",
		"halley", "hanseatic", "hudson", "humboldt", "huygens", "ibnbattuta", "kepler", "magellan",
		"maury", "mercator", "nansen", "nordenskiold", "ortelius", "peary", "piccard", "polo",
		"ptolemy", "raleigh", "ross", "scott", "shackleton", "slocum", "sylvia", "tasman",
		"tharp", "vancouver", "verrazzano", "vespucci", "walsh", "weddell", "wegener", "zheng",
	}
)

// randomName returns a generated name; after a few collisions a digit is
// appended, as dockerd does.
func randomName(taken func(string) bool) string {
	for i := 0; ; i++ {
		n := nameAdjectives[rand.IntN(len(nameAdjectives))] + "_" + nameSurnames[rand.IntN(len(nameSurnames))]
		if i >= 3 {
			n = fmt.Sprintf("%s%d", n, rand.IntN(10))
		}
		if !taken(n) {
			return n
		}
	}
}

// validName is dockerd's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
