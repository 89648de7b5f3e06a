/* Fused optimizer updates for K stacked models (see fused.py for why and how).
 *
 * Every expression mirrors one eager ATen kernel, rounding for rounding: lerp is one
 * fma (weight - 1 from the end when |weight| >= 0.5), addcmul is one fma, the rest
 * are single IEEE operations; built with -ffp-contract=off so nothing else is fused.
 * fused.py checks the result against the eager kernels bit for bit before use.
 * Threads split the K models; each element is computed alone, so the numbers do not
 * depend on the thread count.
 */
#include <math.h>
#include <pthread.h>

#define MAX_THREADS 64

typedef struct {
    long k0, k1, n; /* models [k0, k1), n elements each */
    float *p, *g, *m, *v;
    const float *const *c; /* per-model coefficients, [K] each */
} job_t;

/* c = {lr, beta1, 1 - beta2, decay or NULL} */
static void lion_rows(const job_t *j) {
    for (long k = j->k0; k < j->k1; k++) {
        const float lr = j->c[0][k], b1 = j->c[1][k], omb2 = j->c[2][k];
        const float dec = j->c[3] ? j->c[3][k] : 1.0f;
        const int s1 = fabsf(b1) < 0.5f, s2 = fabsf(omb2) < 0.5f;
        const float w1 = s1 ? b1 : b1 - 1.0f, w2 = s2 ? omb2 : omb2 - 1.0f;
        float *p = j->p + k * j->n, *m = j->m + k * j->n;
        const float *g = j->g + k * j->n;
        for (long i = 0; i < j->n; i++) {
            const float gi = g[i], mi = m[i], pv = p[i] * dec;
            const float c = fmaf(w1, mi - gi, s1 ? gi : mi); /* lerp(g, m, beta1) */
            const float s = (float)((c > 0.0f) - (c < 0.0f));
            p[i] = fmaf(-s, lr, pv);
            m[i] = fmaf(w2, gi - mi, s2 ? mi : gi); /* lerp(m, g, 1 - beta2) */
        }
    }
}

/* Adam(W) before the square root: c = {1 - beta1, beta2, 1 - beta2, decay|NULL, l2|NULL} */
static void adam_moments_rows(const job_t *j) {
    for (long k = j->k0; k < j->k1; k++) {
        const float omb1 = j->c[0][k], b2 = j->c[1][k], omb2 = j->c[2][k];
        const float dec = j->c[3] ? j->c[3][k] : 1.0f, l2 = j->c[4] ? j->c[4][k] : 0.0f;
        const int has_l2 = j->c[4] != 0, s1 = fabsf(omb1) < 0.5f;
        const float w1 = s1 ? omb1 : omb1 - 1.0f;
        float *p = j->p + k * j->n, *g = j->g + k * j->n;
        float *m = j->m + k * j->n, *v = j->v + k * j->n;
        for (long i = 0; i < j->n; i++) {
            const float pv = p[i] * dec, gi = has_l2 ? fmaf(pv, l2, g[i]) : g[i];
            const float mi = m[i];
            p[i] = pv;
            g[i] = gi;
            m[i] = fmaf(w1, gi - mi, s1 ? mi : gi);
            v[i] = fmaf(gi * omb2, gi, v[i] * b2);
        }
    }
}

/* Adam(W) after the square root (in v): c = {eps, sqrt(1 - beta2^t), lr / (1 - beta1^t)} */
static void adam_apply_rows(const job_t *j) {
    for (long k = j->k0; k < j->k1; k++) {
        const float eps = j->c[0][k], bc2 = j->c[1][k], step = j->c[2][k];
        float *p = j->p + k * j->n;
        const float *m = j->m + k * j->n, *root = j->v + k * j->n;
        for (long i = 0; i < j->n; i++) {
            const float den = (root[i] / bc2 + eps) / step;
            p[i] = p[i] - m[i] / den;
        }
    }
}

static void *run_lion(void *a) { lion_rows(a); return 0; }
static void *run_moments(void *a) { adam_moments_rows(a); return 0; }
static void *run_apply(void *a) { adam_apply_rows(a); return 0; }

#ifdef _OPENMP
/* OpenMP from the runtime PyTorch already loaded (same soname): its warm thread pool,
 * no second set of threads competing for the cores. */
static void split(int nthreads, long k, job_t base, void *(*fn)(void *)) {
    base.k0 = 0;
    base.k1 = k;
    if (nthreads <= 1 || k < 2 || k * base.n < (1L << 15)) { /* too small to pay */
        fn(&base);
        return;
    }
    if (nthreads > k) nthreads = (int)k;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int t = 0; t < nthreads; t++) {
        job_t j = base;
        j.k0 = k * t / nthreads;
        j.k1 = k * (t + 1) / nthreads;
        fn(&j);
    }
}
#else
static void split(int nthreads, long k, job_t base, void *(*fn)(void *)) {
    job_t jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (nthreads > k) nthreads = (int)k;
    base.k0 = 0;
    base.k1 = k;
    if (nthreads <= 1 || k * base.n < (1L << 15)) { /* too small to pay for a thread */
        fn(&base);
        return;
    }
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = base;
        jobs[t].k0 = k * t / nthreads;
        jobs[t].k1 = k * (t + 1) / nthreads;
    }
    for (int t = 1; t < nthreads; t++)
        started[t] = pthread_create(&tid[t], 0, fn, &jobs[t]) == 0;
    fn(&jobs[0]);
    for (int t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(tid[t], 0);
        else
            fn(&jobs[t]);
    }
}
#endif

void lion_update(int nt, long k, long n, float *p, float *g, float *m, const float *const *c) {
    job_t j = {0, 0, n, p, g, m, 0, c};
    split(nt, k, j, run_lion);
}

void adam_moments(int nt, long k, long n, float *p, float *g, float *m, float *v,
                  const float *const *c) {
    job_t j = {0, 0, n, p, g, m, v, c};
    split(nt, k, j, run_moments);
}

void adam_apply(int nt, long k, long n, float *p, float *m, float *root, const float *const *c) {
    job_t j = {0, 0, n, p, 0, m, root, c};
    split(nt, k, j, run_apply);
}
