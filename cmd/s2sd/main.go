package main

import (
	"flag"
	"fmt"
	"os"
)

var version = "0.1.0-dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "diag" {
		os.Exit(diagMain(os.Args[2:]))
	}
	fs := flag.NewFlagSet("s2sd", flag.ExitOnError)
	cfgPath := fs.String("config", "", "configuration `file` (TOML); without it, the embedded default")
	check := fs.Bool("t", false, "check the configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println("s2sd", version)
		return
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s2sd:", err)
		os.Exit(1)
	}
	if *check {
		fmt.Printf("s2sd: %s is valid\n", nameOr(*cfgPath))
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "s2sd:", err)
		os.Exit(1)
	}
}
