package main

import (
	"github.com/spf13/cobra"

	"github.com/berthhq/berth/api"
)

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs APP [-f] [--tail N]",
		Short: "Print the logs of an app's live containers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			err = c.Logs(cmd.Context(), args[0], api.LogsOptions{Tail: tail, Follow: follow}, g.sys.out)
			if cmd.Context().Err() != nil {
				return nil // interrupted while following
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVar(&tail, "tail", 100, "lines per container from the end (-1 for all)")
	return cmd
}
