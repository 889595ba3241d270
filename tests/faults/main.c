/*
 * main.c - test_faults sql_oom | storage: sets up SQLite with the counting
 * allocator, the extension and the fault VFS (harness.c), runs one test in a
 * temporary directory of its own, and exits nonzero if any check failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"

int main(int argc, char **argv) {
  if (argc != 2 || (strcmp(argv[1], "sql_oom") && strcmp(argv[1], "storage"))) {
    fprintf(stderr, "usage: %s sql_oom|storage\n", argv[0]);
    return 2;
  }
  if (faults_init()) return faults_summary();
  const char *tmp = getenv("TMPDIR");
  snprintf(faults_dir, 512, "%s/cnn-faults.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!CHECKF(mkdtemp(faults_dir) != NULL, "cannot make a directory %s", faults_dir))
    return faults_summary();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (!strcmp(argv[1], "sql_oom"))
    faults_sql_oom();
  else
    faults_storage();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%s: %.1f s\n", argv[1],
         (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  /* Every database was removed by its test; what is left is a failure's. */
  if (rmdir(faults_dir) != 0) fprintf(stderr, "left %s for inspection\n", faults_dir);
  sqlite3_reset_auto_extension();
  sqlite3_shutdown();
  return faults_summary();
}
