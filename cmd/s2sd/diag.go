package main

import (
	"fmt"
	"os"
)

func diagMain(args []string) int {
	fmt.Fprintln(os.Stderr, "s2sd diag: not available in this build")
	return 2
}
