# Peers of benchmarks/bench_missing.py: EM for the normal with missing values
# from R's `norm` (Schafer's Fortran, at most 31 variables) and `norm2`.
# Usage: Rscript peers_missing.R LIBDIR DATA.bin norm|norm2 CRITERION REPEATS OUT.bin
# DATA.bin: two int32 (n, d) then n * d float64, row-major, NaN = missing.
# OUT.bin: float64 median wall-clock and CPU seconds, iterations, mean (d),
# covariance (d * d).
# The time covers the whole method (norm: prelim.norm + em.norm; norm2:
# emNorm), not R's start-up or reading the data.
args <- commandArgs(trailingOnly = TRUE)
.libPaths(c(args[1], .libPaths()))
con <- file(args[2], "rb")
dims <- readBin(con, "integer", 2)
x <- matrix(readBin(con, "double", dims[1] * dims[2]), dims[1], dims[2], byrow = TRUE)
close(con)
method <- args[3]
crit <- as.numeric(args[4])
repeats <- as.integer(args[5])
suppressMessages(library(method, character.only = TRUE))
run <- function() {
  if (method == "norm") {
    s <- prelim.norm(x)
    theta <- em.norm(s, showits = FALSE, maxits = 100000, criterion = crit)
    p <- getparam.norm(s, theta)
    list(mu = p$mu, sigma = p$sigma, iter = NA)
  } else {
    r <- emNorm(x, iter.max = 100000, criterion = crit, estimate.worst = FALSE)
    list(mu = as.vector(r$param$beta), sigma = r$param$sigma, iter = r$iter)
  }
}
# Wall-clock and CPU (user + system) seconds of each run.
wall <- numeric(repeats)
cpu <- numeric(repeats)
for (i in seq_len(repeats)) {
  t0 <- proc.time()
  out <- run()
  t1 <- proc.time() - t0
  wall[i] <- t1[["elapsed"]]
  cpu[i] <- t1[["user.self"]] + t1[["sys.self"]]
}
con <- file(args[6], "wb")
writeBin(c(median(wall), median(cpu), ifelse(is.na(out$iter), -1, out$iter),
           as.vector(out$mu), as.vector(out$sigma)), con)
close(con)
