// oneDNN 2.x (Debian libdnnl-dev) timing of the f32 convolution and deconvolution passes of the
// Keras-book VAE at micro-batch N=16, one thread: the yardstick of launch/onednn-benchmark.sh.
// Build: g++ -O2 -std=c++17 -fopenmp onednn_passes.cpp -ldnnl   Run: OMP_NUM_THREADS=1 ./a.out [reps=7] [calls=20]
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

static const memory::dim N = 16;

struct Layer {
    const char *name;
    bool transposed;  // false: Conv2d, true: ConvTranspose2d
    memory::dim cin, cout, hin, hout, stride;
    memory::dims pad_l, pad_r;
    bool need_bwd_data;
    memory::dim small_side;  // nominal-FLOP grid side
};

struct Result {
    std::string layer, pass, impl;
    double ms, gflops;
};

static std::vector<Result> g_results;

[[noreturn]] static void die(const std::string &m) {
    std::fprintf(stderr, "FATAL: %s\n", m.c_str());
    std::exit(1);
}

static std::string dims_str(const memory::dims &d) {
    std::string s;
    for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
    return s;
}

static void check_dims(const char *layer, const char *what, const memory::desc &md,
                       const memory::dims &expect) {
    if (md.dims() != expect)
        die(std::string(layer) + ": " + what + " dims " + dims_str(md.dims()) +
            " != expected " + dims_str(expect));
}

// Create a memory in the primitive's chosen layout, filled (via a one-off reorder
// from a plain user-layout buffer) with random data.
static memory make_mem(const memory::desc &pd_md, const memory::dims &dims, tag user_tag,
                       engine &eng, stream &s, unsigned seed) {
    memory::desc user_md(dims, dt::f32, user_tag);
    memory user(user_md, eng);
    float *p = static_cast<float *>(user.get_data_handle());
    size_t n = user_md.get_size() / sizeof(float);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (size_t i = 0; i < n; ++i) p[i] = u(rng);
    if (pd_md == user_md) return user;
    memory m(pd_md, eng);
    reorder(user, m).execute(s, user, m);
    s.wait();
    return m;
}

// Time one primitive: `reps` windows of `calls` executions; best window mean (ms/call).
static double time_prim(primitive &p, std::unordered_map<int, memory> &args, stream &s,
                        int reps, int calls) {
    p.execute(s, args);  // warm-up (JIT page-in, caches)
    s.wait();
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < calls; ++c) p.execute(s, args);
        s.wait();
        auto t1 = std::chrono::steady_clock::now();
        double ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / calls;
        best = std::min(best, ms);
    }
    return best;
}

static void report(const Layer &L, const char *pass, const char *impl, double ms) {
    double sg = (double)L.small_side * L.small_side;
    double flops = 2.0 * N * sg * L.cin * L.cout * 9.0;
    double gf = flops / (ms * 1e-3) / 1e9;
    std::printf("%-7s %-9s %-28s %10.4f ms %9.2f GFLOP/s\n", L.name, pass, impl, ms, gf);
    std::fflush(stdout);
    g_results.push_back({L.name, pass, impl, ms, gf});
}

template <typename FwdT, typename BwdDT, typename BwdWT>
static void run_layer(const Layer &L, algorithm alg, engine &eng, stream &s, int reps,
                      int calls) {
    memory::dims src_d = {N, L.cin, L.hin, L.hin};
    memory::dims wei_d = {L.cout, L.cin, 3, 3};
    memory::dims bia_d = {L.cout};
    memory::dims dst_d = {N, L.cout, L.hout, L.hout};
    memory::dims strides = {L.stride, L.stride};

    memory::desc src_any(src_d, dt::f32, tag::any);
    memory::desc wei_any(wei_d, dt::f32, tag::any);
    memory::desc bia_any(bia_d, dt::f32, tag::any);
    memory::desc dst_any(dst_d, dt::f32, tag::any);

    primitive_attr attr;
    attr.set_scratchpad_mode(scratchpad_mode::user);

    // ---- forward (training, so it can serve as the backward hint) ----
    typename FwdT::desc fd(prop_kind::forward_training, alg, src_any, wei_any, bia_any,
                           dst_any, strides, L.pad_l, L.pad_r);
    typename FwdT::primitive_desc fpd(fd, attr, eng);
    check_dims(L.name, "fwd src", fpd.src_desc(), src_d);
    check_dims(L.name, "fwd dst", fpd.dst_desc(), dst_d);
    check_dims(L.name, "fwd weights", fpd.weights_desc(), wei_d);
    {
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_SRC, make_mem(fpd.src_desc(), src_d, tag::nchw, eng, s, 1)},
            {DNNL_ARG_WEIGHTS, make_mem(fpd.weights_desc(), wei_d, tag::oihw, eng, s, 2)},
            {DNNL_ARG_BIAS, make_mem(fpd.bias_desc(), bia_d, tag::x, eng, s, 3)},
            {DNNL_ARG_DST, memory(fpd.dst_desc(), eng)},
            {DNNL_ARG_SCRATCHPAD, memory(fpd.scratchpad_desc(), eng)}};
        FwdT prim(fpd);
        report(L, "fwd", fpd.impl_info_str(), time_prim(prim, args, s, reps, calls));
    }

    // ---- backward data ----
    if (L.need_bwd_data) {
        typename BwdDT::desc bd(alg, src_any, wei_any, dst_any, strides, L.pad_l, L.pad_r);
        typename BwdDT::primitive_desc bpd(bd, attr, eng, fpd);
        check_dims(L.name, "bwd_data diff_src", bpd.diff_src_desc(), src_d);
        check_dims(L.name, "bwd_data diff_dst", bpd.diff_dst_desc(), dst_d);
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_DIFF_DST, make_mem(bpd.diff_dst_desc(), dst_d, tag::nchw, eng, s, 4)},
            {DNNL_ARG_WEIGHTS, make_mem(bpd.weights_desc(), wei_d, tag::oihw, eng, s, 2)},
            {DNNL_ARG_DIFF_SRC, memory(bpd.diff_src_desc(), eng)},
            {DNNL_ARG_SCRATCHPAD, memory(bpd.scratchpad_desc(), eng)}};
        BwdDT prim(bpd);
        report(L, "bwd_data", bpd.impl_info_str(), time_prim(prim, args, s, reps, calls));
    }

    // ---- backward weights (+ diff_bias) ----
    {
        typename BwdWT::desc wd(alg, src_any, wei_any, bia_any, dst_any, strides, L.pad_l,
                                L.pad_r);
        typename BwdWT::primitive_desc wpd(wd, attr, eng, fpd);
        check_dims(L.name, "bwd_w src", wpd.src_desc(), src_d);
        check_dims(L.name, "bwd_w diff_dst", wpd.diff_dst_desc(), dst_d);
        check_dims(L.name, "bwd_w diff_weights", wpd.diff_weights_desc(), wei_d);
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_SRC, make_mem(wpd.src_desc(), src_d, tag::nchw, eng, s, 1)},
            {DNNL_ARG_DIFF_DST, make_mem(wpd.diff_dst_desc(), dst_d, tag::nchw, eng, s, 4)},
            {DNNL_ARG_DIFF_WEIGHTS, memory(wpd.diff_weights_desc(), eng)},
            {DNNL_ARG_DIFF_BIAS, memory(wpd.diff_bias_desc(), eng)},
            {DNNL_ARG_SCRATCHPAD, memory(wpd.scratchpad_desc(), eng)}};
        BwdWT prim(wpd);
        report(L, "bwd_w", wpd.impl_info_str(), time_prim(prim, args, s, reps, calls));
    }
}

static void print_cpu() {
    std::ifstream f("/proc/cpuinfo");
    std::string line, family = "?", model = "?", name = "?", flags;
    while (std::getline(f, line)) {
        auto val = [&] { auto p = line.find(':'); return p == std::string::npos ? std::string() : line.substr(p + 2); };
        if (line.rfind("cpu family", 0) == 0 && family == "?") family = val();
        else if (line.rfind("model name", 0) == 0 && name == "?") name = val();
        else if (line.rfind("model", 0) == 0 && line.rfind("model name", 0) != 0 && model == "?") model = val();
        else if (line.rfind("flags", 0) == 0 && flags.empty()) flags = " " + val() + " ";
    }
    bool avx512f = flags.find(" avx512f ") != std::string::npos;
    bool avx2 = flags.find(" avx2 ") != std::string::npos;
    const dnnl_version_t *v = dnnl_version();
    std::printf("CPU: %s | family %s model %s | avx512f=%s avx2=%s\n", name.c_str(),
                family.c_str(), model.c_str(), avx512f ? "yes" : "no", avx2 ? "yes" : "no");
    std::printf("oneDNN %d.%d.%d (hash %s), effective cpu_isa enum=%d, omp threads=%d, N=%ld\n",
                v->major, v->minor, v->patch, v->hash, (int)dnnl_get_effective_cpu_isa(),
                omp_get_max_threads(), (long)N);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? std::atoi(argv[1]) : 7;
    int calls = argc > 2 ? std::atoi(argv[2]) : 20;
    if (reps < 1 || calls < 1) die("usage: bench [reps>=1] [calls>=1]");
    omp_set_num_threads(1);
    print_cpu();
    std::printf("reps=%d calls=%d (best window mean per call)\n", reps, calls);

    engine eng(engine::kind::cpu, 0);
    stream s(eng);

    // PyTorch Conv2d(k3,s2,p1) 28->14: floor((28+1+pr-3)/2)+1 = 14 with pr=1 (as PyTorch, last pad row unused).
    // ConvTranspose2d(k3,s2,p1,output_padding=1): oneDNN dst = (src-1)*s + 3 - pl - pr
    //   -> 14 = 6*2 + 3 - 1 - pr => pr = 0;  28 = 13*2 + 3 - 1 - pr => pr = 0.
    // ConvTranspose2d(k3,s1,p1): 28 = 27 + 3 - 1 - pr => pr = 1.
    const Layer convs[] = {
        {"conv1", false, 1, 32, 28, 14, 2, {1, 1}, {1, 1}, false, 14},
        {"conv2", false, 32, 64, 14, 7, 2, {1, 1}, {1, 1}, true, 7},
    };
    const Layer deconvs[] = {
        {"convT1", true, 64, 64, 7, 14, 2, {1, 1}, {0, 0}, true, 7},
        {"convT2", true, 64, 32, 14, 28, 2, {1, 1}, {0, 0}, true, 14},
        {"convT3", true, 32, 1, 28, 28, 1, {1, 1}, {1, 1}, true, 28},
    };
    try {
        for (const auto &L : convs)
            run_layer<convolution_forward, convolution_backward_data,
                      convolution_backward_weights>(L, algorithm::convolution_direct, eng, s,
                                                    reps, calls);
        for (const auto &L : deconvs)
            run_layer<deconvolution_forward, deconvolution_backward_data,
                      deconvolution_backward_weights>(L, algorithm::deconvolution_direct, eng,
                                                      s, reps, calls);
    } catch (dnnl::error &e) {
        die(std::string("oneDNN error: ") + e.what() + " status=" + std::to_string(e.status));
    }

    std::printf("\n| layer | pass | impl | ms/call | nominal GFLOP/s |\n|---|---|---|---:|---:|\n");
    double total = 0;
    for (auto &r : g_results) {
        std::printf("| %s | %s | %s | %.4f | %.2f |\n", r.layer.c_str(), r.pass.c_str(),
                    r.impl.c_str(), r.ms, r.gflops);
        total += r.ms;
    }
    std::printf("| **total** | | | %.4f | |\n", total);
    return 0;
}
