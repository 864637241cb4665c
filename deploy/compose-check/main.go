// compose-check loads each Compose file named on its command line with compose-go, the loader
// that `docker compose` itself uses, so a file is checked against today's Compose spec without a
// Docker engine or the compose plugin. Each file is loaded alone, as `docker compose -f FILE
// config` would: its own directory is the project directory, the variables come from the
// process environment and then the env file (the environment wins, as in Compose), and
// interpolation, schema validation and the consistency checks all run. It prints
// "ok FILE" for a valid file and the loader's message for an invalid one, and exits 1 if any
// file was invalid (2 on a usage error).
//
//	compose-check [-env-file FILE] COMPOSE_FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
)

func check(ctx context.Context, file, envFile string) error {
	var envFiles []string // none: Compose's default, a .env beside the file if there is one
	if envFile != "" {
		envFiles = []string{envFile}
	}
	options, err := cli.NewProjectOptions([]string{file},
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithProfiles([]string{"*"}), // every service, whatever its profiles
		cli.WithLoadOptions(func(o *loader.Options) { o.SkipValidation = false }),
	)
	if err != nil {
		return err
	}
	_, err = options.LoadProject(ctx)
	return err
}

func main() {
	envFile := flag.String("env-file", "", "variables for interpolation (the process environment wins)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env-file FILE] COMPOSE_FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	status := 0
	for _, file := range flag.Args() {
		if err := check(context.Background(), file, *envFile); err != nil {
			fmt.Fprintf(os.Stderr, "invalid %s: %v\n", file, err)
			status = 1
			continue
		}
		fmt.Printf("ok %s\n", file)
	}
	os.Exit(status)
}
