namespace ScaleGrow.Storage;

/// <summary>
/// Where a run keeps everything that outlives one step of its orchestration: specs, journals, model and optimizer
/// checkpoints, reports (see docs "State lives in blobs"). Paths are <c>container/name</c>, e.g.
/// <c>runs/{runId}/steps/00003/model.safetensors</c>; the first segment is a blob container or a top folder and must
/// follow Azure's container rules (<see cref="ArtifactPath"/>), so a path means the same thing in every store.
/// </summary>
/// <remarks>
/// Guarantees every implementation keeps, because activities are retried and may run concurrently:
/// <list type="bullet">
/// <item>A write is atomic for readers: a reader sees the old artifact or the new one, never a part of either.</item>
/// <item>Every write gives the artifact a new <see cref="ArtifactInfo.ETag"/>, even when the bytes are the same and
/// two writes fall in the same millisecond.</item>
/// <item>Conditional writes (<see cref="ArtifactCondition"/>) are decided against the artifact's state at the moment
/// of the commit, so a read-ETag-then-write-IfMatch loop never loses an update; a failed condition throws
/// <see cref="ArtifactConflictException"/>.</item>
/// <item><see cref="ReadAsync"/> returns bytes and the ETag of exactly those bytes.</item>
/// </list>
/// Bad paths throw <see cref="InvalidSpecException"/>; a missing artifact <see cref="ArtifactNotFoundException"/>;
/// a failure worth retrying later <see cref="ArtifactStoreUnavailableException"/>.
/// </remarks>
public interface IArtifactStore
{
    /// <summary>The artifact's length, ETag, time and metadata; <c>null</c> when there is none at the path.</summary>
    Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Whether an artifact exists at the path.</summary>
    Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Opens the artifact for reading. The stream keeps reading the version that was current when it was opened,
    /// even if the artifact is overwritten meanwhile (or fails rather than mix two versions).
    /// </summary>
    /// <exception cref="ArtifactNotFoundException">No artifact at the path.</exception>
    Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Opens exactly the version of the artifact whose ETag is <paramref name="eTag"/> for reading, as a seekable
    /// stream of known length that fetches content as it is read (blob stores read ranges on demand), so an artifact
    /// of any size can be parsed without holding it in memory. The stream never returns bytes of another version:
    /// opening fails with <see cref="ArtifactConflictException"/> when the artifact is no longer that version, and an
    /// open stream either keeps reading its version (a local file replaced by rename) or fails the same way (a blob
    /// replaced between two range reads).
    /// </summary>
    /// <exception cref="ArtifactNotFoundException">No artifact at the path.</exception>
    /// <exception cref="ArtifactConflictException">The artifact's current version has another ETag.</exception>
    Task<Stream> OpenVersionAsync(string path, string eTag, CancellationToken cancellationToken = default);

    /// <summary>Reads the whole artifact together with the info (ETag, metadata) of exactly the version read.</summary>
    /// <exception cref="ArtifactNotFoundException">No artifact at the path.</exception>
    Task<ArtifactContent> ReadAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Reads the whole artifact into a new array the caller owns.</summary>
    /// <exception cref="ArtifactNotFoundException">No artifact at the path.</exception>
    Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes (creates or replaces) the artifact from <paramref name="content"/>'s current position to its end,
    /// atomically for readers, and returns the info of the version written.
    /// </summary>
    /// <exception cref="ArtifactConflictException">The write's <see cref="ArtifactWriteOptions.Condition"/> failed.
    /// </exception>
    Task<ArtifactInfo> WriteAsync(string path, Stream content, ArtifactWriteOptions? options = null,
        CancellationToken cancellationToken = default);

    /// <inheritdoc cref="WriteAsync(string, Stream, ArtifactWriteOptions?, CancellationToken)"/>
    Task<ArtifactInfo> WriteAsync(string path, ReadOnlyMemory<byte> content, ArtifactWriteOptions? options = null,
        CancellationToken cancellationToken = default);

    /// <summary>Deletes the artifact; <c>false</c> when there was none.</summary>
    Task<bool> DeleteAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// The artifacts whose path starts with <paramref name="prefix"/> (plain string prefix, so <c>runs/a</c> matches
    /// <c>runs/a/x</c> and <c>runs/ab/x</c>; end it with '/' for one folder), sorted by path in ordinal order.
    /// The prefix's first segment must be a whole, valid container name (<c>runs</c> or <c>runs/…</c>).
    /// </summary>
    IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Copies content and metadata to <paramref name="to"/> (replacing what is there) as one atomic write.
    /// </summary>
    /// <exception cref="ArtifactNotFoundException">No artifact at <paramref name="from"/>.</exception>
    Task<ArtifactInfo> CopyAsync(string from, string to, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves the artifact to <paramref name="to"/> (replacing what is there); used to put rejected uploads aside.
    /// The destination appears atomically; the source is gone when the call returns.
    /// </summary>
    /// <exception cref="ArtifactNotFoundException">No artifact at <paramref name="from"/>.</exception>
    /// <exception cref="ArtifactConflictException">The source was overwritten while it was being moved (blob stores,
    /// which move by copy and delete); the destination then holds the version that was read.</exception>
    Task<ArtifactInfo> MoveAsync(string from, string to, CancellationToken cancellationToken = default);
}
