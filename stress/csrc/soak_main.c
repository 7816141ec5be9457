/*
 * soak_main.c — the soak driver's command line: runs seeded lifecycles until the time or
 * lifecycle budget is spent, prints progress to stderr about once a second and, as the
 * last line of stdout, one JSON object with the figures and the violations.
 * Exit status: 0 clean, 1 a violation, 2 bad usage.
 *
 * Normally started by `python -m stress.soak`, which builds it and documents the options.
 */
#include "soak.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: soak [--seconds N] [--lifecycles N] [--seed S] [--lifecycle K]\n"
            "            [--io-size BYTES] [--defects MASK] [--no-faults]\n"
            "            [--max-violations N] [--quiet]\n"
            "  --seconds N       time budget (default 10 unless --lifecycles is given)\n"
            "  --lifecycles N    lifecycle budget (exact: same seed, same figures)\n"
            "  --seed S          run seed (default 1)\n"
            "  --lifecycle K     replay lifecycle K of the seed alone\n"
            "  --io-size BYTES   bytes per data IO, a multiple of 512 (default 4096)\n"
            "  --defects MASK    NRT_DEFECT_* bits passed to the target's options\n"
            "  --no-faults       IO only, no fault injection, graceful teardowns\n"
            "  --max-violations  stop after this many violations (default 1)\n"
            "  --status FILE     keep the index of the running lifecycle in FILE (so a\n"
            "                    watchdog can name the lifecycle of a hang or a crash)\n"
            "  --quiet           no progress lines\n");
}

/* The running lifecycle's index, rewritten in place: one pwrite per lifecycle. */
static void status_write(int fd, uint64_t lifecycle)
{
    if (fd < 0)
        return;
    char line[32];
    int n = snprintf(line, sizeof(line), "%20llu\n", (unsigned long long)lifecycle);
    if (pwrite(fd, line, (size_t)n, 0) != n)
        fprintf(stderr, "soak: cannot write the status file: %s\n", strerror(errno));
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s ? s : "", &end, 0);
    if (!s || !*s || *end || errno || s[0] == '-') {
        fprintf(stderr, "soak: %s needs a non-negative integer, got %s\n", opt, s ? s : "nothing");
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct soak_config cfg = {.seed = 1, .only_lifecycle = -1, .io_size = 4096,
                              .max_violations = 1, .faults = 1, .progress = 1};
    int have_seconds = 0, status_fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-faults")) {
            cfg.faults = 0;
        } else if (!strcmp(a, "--quiet")) {
            cfg.progress = 0;
        } else if (!strcmp(a, "--status")) {
            if (!v) {
                fprintf(stderr, "soak: --status needs a file name\n");
                return 2;
            }
            status_fd = open(v, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (status_fd < 0) {
                fprintf(stderr, "soak: --status %s: %s\n", v, strerror(errno));
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--seconds")) {
            char *end;
            cfg.seconds = v ? strtod(v, &end) : -1;
            if (!v || *end || cfg.seconds <= 0) {
                fprintf(stderr, "soak: --seconds needs a positive number\n");
                return 2;
            }
            have_seconds = 1;
            i++;
        } else if (!strcmp(a, "--lifecycles") || !strcmp(a, "--seed") ||
                   !strcmp(a, "--lifecycle") || !strcmp(a, "--io-size") ||
                   !strcmp(a, "--defects") || !strcmp(a, "--max-violations")) {
            if (parse_u64(a, v, &x) < 0)
                return 2;
            i++;
            if (!strcmp(a, "--lifecycles"))
                cfg.lifecycles = x;
            else if (!strcmp(a, "--seed"))
                cfg.seed = x;
            else if (!strcmp(a, "--lifecycle"))
                cfg.only_lifecycle = (int64_t)x;
            else if (!strcmp(a, "--io-size"))
                cfg.io_size = (uint32_t)x;
            else if (!strcmp(a, "--defects"))
                cfg.defects = (uint32_t)x;
            else
                cfg.max_violations = (uint32_t)x;
        } else {
            fprintf(stderr, "soak: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (cfg.io_size < 512 || cfg.io_size % 512 || cfg.io_size > (1u << 20)) {
        fprintf(stderr, "soak: --io-size %u must be a multiple of 512 from 512 to 1 MiB\n",
                cfg.io_size);
        return 2;
    }
    if (!have_seconds && !cfg.lifecycles && cfg.only_lifecycle < 0)
        cfg.seconds = 10;
    if (cfg.max_violations == 0)
        cfg.max_violations = 1;
    static struct soak_figures f;
    soak_figures_init(&f);
    fprintf(stderr, "soak: seed %llu%s, io size %u, faults %s%s\n",
            (unsigned long long)cfg.seed,
            cfg.only_lifecycle >= 0 ? " (replaying one lifecycle)" : "", cfg.io_size,
            cfg.faults ? "on" : "off", cfg.defects ? ", target defects on" : "");
    double start = now(), last = start, cpu_start = cpu_now();
    uint64_t last_ios = 0;
    if (cfg.only_lifecycle >= 0) {
        status_write(status_fd, (uint64_t)cfg.only_lifecycle);
        soak_lifecycle(&cfg, (uint64_t)cfg.only_lifecycle, &f);
    } else {
        for (uint64_t k = 0;; k++) {
            if (cfg.lifecycles && k >= cfg.lifecycles)
                break;
            if (cfg.seconds > 0 && now() - start >= cfg.seconds)
                break;
            status_write(status_fd, k);
            soak_lifecycle(&cfg, k, &f);
            if (f.nviolations >= cfg.max_violations)
                break;
            double t = now();
            if (cfg.progress && t - last >= 1.0) {
                uint64_t faults = 0;
                for (int i = 0; i < SOAK_F_COUNT; i++)
                    faults += f.faults[i];
                fprintf(stderr, "soak: %6.1f s  %llu ios  %.0f IO/s  %llu lifecycles  %llu "
                        "faults  %u violations\n", t - start, (unsigned long long)f.ios,
                        (double)(f.ios - last_ios) / (t - last),
                        (unsigned long long)f.lifecycles, (unsigned long long)faults,
                        f.nviolations);
                last = t;
                last_ios = f.ios;
            }
        }
    }
    double elapsed = now() - start;
    f.cpu_seconds = cpu_now() - cpu_start;
    for (uint32_t i = 0; i < f.nviolations && i < SOAK_MAX_VIOLATIONS; i++)
        fprintf(stderr, "soak: replay violation %u: --seed %llu --lifecycle %llu\n", i + 1,
                (unsigned long long)cfg.seed, (unsigned long long)f.v[i].lifecycle);
    fflush(stderr);
    soak_figures_json(stdout, &cfg, &f, elapsed);
    return f.nviolations ? 1 : 0;
}
