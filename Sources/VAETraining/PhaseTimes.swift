/// Where the time of the training steps goes, accumulated over steps (seconds of wall-clock time).
/// The compute phases run on several threads at once: their wall-clock share is the parallel region's
/// duration split in proportion to the threads' time in each phase.
public struct PhaseTimes: Sendable, Codable {
  public var data = 0.0  // images to floats, noise
  public var forward = 0.0
  public var backward = 0.0
  /// The gradient reduction's own work (scales, fixed point, conversion back), not waiting in MPI.
  public var reduction = 0.0
  /// Time blocked in collectives, waiting for the other ranks or the network.
  public var waiting = 0.0
  public var optimizer = 0.0
  /// Of the micro-batches' parallel region, the time a worker thread ran none (waiting for the
  /// step's last micro-batch, or not yet started; with more threads than cores, some start only
  /// when others end), averaged over the threads: part of the compute phases above, not added to
  /// them. A host that slows one thread down raises it. 0 with one thread.
  public var threadsIdle = 0.0
  public var steps = 0
  public var images = 0

  public init() {}


  public var named: [(String, Double)] {
    [("data", data), ("forward", forward), ("backward", backward), ("reduction", reduction), ("waiting", waiting),
     ("optimizer", optimizer)]
  }
}
