package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/s2sd/s2sd/cluster"
)

// owner waits until a cluster is settled and prints which of its nodes
// owns a remote domain (see the package comment).
func owner(args []string) error {
	fs := flag.NewFlagSet("owner", flag.ExitOnError)
	domain := fs.String("domain", "recv.b.test", "remote `domain`")
	wait := fs.Duration("timeout", 60*time.Second, "give up after this long")
	fs.Parse(args)
	urls := fs.Args()
	if len(urls) == 0 {
		return errors.New("owner: the nodes' status.json addresses are missing")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for end := time.Now().Add(*wait); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		sts := make([]cluster.Status, len(urls))
		ok := true
		for i, u := range urls {
			if err := getStatus(client, u, &sts[i]); err != nil {
				last, ok = err.Error(), false
				break
			}
		}
		if !ok {
			continue
		}
		if why := unsettled(sts, len(urls)); why != "" {
			last = why
			continue
		}
		o := cluster.PreferredOwner(*domain, sts[0].Members, sts[0].Partitions)
		for i, st := range sts {
			if st.Node == o {
				fmt.Println(i + 1)
				return nil
			}
		}
		return fmt.Errorf("owner: %s is owned by %s, not one of the nodes given", *domain, o)
	}
	return fmt.Errorf("owner: the cluster did not settle in %s: %s", *wait, last)
}

func getStatus(client *http.Client, url string, st *cluster.Status) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	var v struct {
		Cluster *cluster.Status `json:"cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if v.Cluster == nil {
		return fmt.Errorf("%s: not a node of a cluster", url)
	}
	*st = *v.Cluster
	return nil
}

// unsettled says why the nodes are not settled yet, or "": every node sees
// all n members, and every partition has one owner, its preferred one.
func unsettled(sts []cluster.Status, n int) string {
	owned := 0
	for _, st := range sts {
		switch {
		case len(st.Members) != n:
			return fmt.Sprintf("%s sees %d members", st.Node, len(st.Members))
		case !slices.Equal(st.Members, sts[0].Members):
			return fmt.Sprintf("%s and %s see different members", st.Node, sts[0].Node)
		case len(st.Moving) > 0:
			return fmt.Sprintf("%s still moves %d partitions", st.Node, len(st.Moving))
		}
		owned += len(st.Owned)
	}
	if owned != sts[0].Partitions {
		return fmt.Sprintf("%d of %d partitions owned", owned, sts[0].Partitions)
	}
	return ""
}
