/* One function per subcommand (one file each); main.c dispatches by name. */
#ifndef RW_CMDS_H
#define RW_CMDS_H

/* argv[0] is the subcommand name; return value is the process exit status. */
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_policy(int argc, char **argv);	 /* src/policy/cmd_policy.c */
int cmd_learn(int argc, char **argv);	 /* src/policy/cmd_learn.c */
int cmd_agent(int argc, char **argv);	 /* src/daemon/cmd_agent.c */
int cmd_job(int argc, char **argv);	 /* src/daemon/cmd_job.c */
int cmd_kernel(int argc, char **argv);	 /* src/kernel/cmd_kernel.c */
int cmd_baseline(int argc, char **argv); /* src/baseline/cmd_baseline.c */

#endif
