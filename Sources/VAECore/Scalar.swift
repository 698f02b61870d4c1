import _COpenBLAS

#if canImport(Glibc)
  import Glibc
#endif

/// The element type of the model: `Float` for training, `Double` for the gradient checks.
///
/// The model is generic and `@inlinable` so that each client module compiles it specialized for its
/// element type. The loops of the step are the requirements in Kernels.swift: Double runs the Swift
/// reference loops, Float the C kernels of `_CKernels`, which the tests check against the reference.
/// `gemm` (OpenBLAS) serves only `bench --gemm-peak`, the yardstick of a well-tuned library.
public protocol VAEScalar: BinaryFloatingPoint, Sendable {
  /// Row-major C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C.
  static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
    beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
  static func exponential(_ x: Self) -> Self
  static func logOnePlus(_ x: Self) -> Self

  // Kernels (Kernels.swift).
  /// `mask`: a ReLU's forward output laid out as the result, which is zeroed where it is not > 0.
  static func convGather(
    _ g: ConvWindow, weight: UnsafePointer<Self>, bias: UnsafePointer<Self>?, relu: Bool, mask: UnsafePointer<Self>?,
    large: UnsafePointer<Self>, small: UnsafeMutablePointer<Self>, scratch: UnsafeMutablePointer<Self>)
  static func convScatter(
    _ g: ConvWindow, weight: UnsafePointer<Self>, bias: UnsafePointer<Self>?, relu: Bool, mask: UnsafePointer<Self>?,
    small: UnsafePointer<Self>, large: UnsafeMutablePointer<Self>, scratch: UnsafeMutablePointer<Self>)
  static func convWeightGradient(
    _ g: ConvWindow, small: UnsafePointer<Self>, large: UnsafePointer<Self>, dWeight: UnsafeMutablePointer<Self>)
  static func gridSums(_ grid: UnsafePointer<Self>, shape: GridShape, into sums: UnsafeMutablePointer<Self>)
  static func dense(
    weight: UnsafePointer<Self>, outStride: Int, inStride: Int, bias: UnsafePointer<Self>?, relu: Bool,
    mask: UnsafePointer<Self>?, accumulate: Bool, input: UnsafePointer<Self>, inOffsets: FeatureOffsets,
    output: UnsafeMutablePointer<Self>, outOffsets: FeatureOffsets, lanes: Int)
  static func denseWeightGradient(
    dWeight: UnsafeMutablePointer<Self>, outStride: Int, inStride: Int, dBias: UnsafeMutablePointer<Self>?,
    dy: UnsafePointer<Self>, dyOffsets: FeatureOffsets, x: UnsafePointer<Self>, xOffsets: FeatureOffsets, lanes: Int)
  static func reluBackward(dy: UnsafeMutablePointer<Self>, output: UnsafePointer<Self>, count: Int)
  static func bceWithLogits(
    logits: UnsafePointer<Self>, targets: UnsafePointer<Self>, dLogits: UnsafeMutablePointer<Self>?,
    batch: Int, pixels: Int, perImage: UnsafeMutablePointer<Double>?) -> Double
}

@usableFromInline
func cblasTranspose(_ transpose: Bool) -> CBLAS_TRANSPOSE {
  transpose ? CblasTrans : CblasNoTrans
}

extension Float: VAEScalar {
  public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }
  @inlinable public static func exponential(_ x: Float) -> Float { expf(x) }
  @inlinable public static func logOnePlus(_ x: Float) -> Float { log1pf(x) }
}

extension Double: VAEScalar {
  public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    cblas_dgemm(
      CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }
  @inlinable public static func exponential(_ x: Double) -> Double { exp(x) }
  @inlinable public static func logOnePlus(_ x: Double) -> Double { log1p(x) }
}

/// BLAS runs single-threaded inside each worker: vae-dist parallelises over micro-batches itself, and
/// OpenBLAS's own thread pool would oversubscribe the cores that Dispatch and the other ranks use.
public func configureBLASForWorkerThreads() {
  openblas_set_num_threads(1)
}

/// The OpenBLAS kernel family chosen for this CPU (e.g. "Haswell", "SkylakeX").
public func blasCoreName() -> String {
  guard let name = openblas_get_corename() else { return "unknown" }
  return String(cString: name)
}
