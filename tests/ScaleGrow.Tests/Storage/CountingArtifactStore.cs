using System.Runtime.CompilerServices;
using ScaleGrow.Storage;

namespace ScaleGrow.Tests.Storage;

/// <summary>
/// Passes every call to a real store and counts the reads, so a test can see what a decorator in front of it asked
/// for. Not a mock: all behaviour is the real store's.
/// </summary>
public sealed class CountingArtifactStore(IArtifactStore inner) : IArtifactStore
{
    private int _infoReads;
    private int _contentReads;

    /// <summary>Calls of GetInfoAsync and ExistsAsync.</summary>
    public int InfoReads => Volatile.Read(ref _infoReads);

    /// <summary>Calls that transfer content: OpenReadAsync, ReadAsync, ReadAllBytesAsync.</summary>
    public int ContentReads => Volatile.Read(ref _contentReads);

    public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _infoReads);
        return inner.GetInfoAsync(path, cancellationToken);
    }

    public Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _infoReads);
        return inner.ExistsAsync(path, cancellationToken);
    }

    public Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _contentReads);
        return inner.OpenReadAsync(path, cancellationToken);
    }

    public Task<Stream> OpenVersionAsync(string path, string eTag, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _contentReads);
        return inner.OpenVersionAsync(path, eTag, cancellationToken);
    }

    public Task<ArtifactContent> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _contentReads);
        return inner.ReadAsync(path, cancellationToken);
    }

    public Task<byte[]> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _contentReads);
        return inner.ReadAllBytesAsync(path, cancellationToken);
    }

    public Task<ArtifactInfo> WriteAsync(string path, Stream content, ArtifactWriteOptions? options = null,
        CancellationToken cancellationToken = default) => inner.WriteAsync(path, content, options, cancellationToken);

    public Task<ArtifactInfo> WriteAsync(string path, ReadOnlyMemory<byte> content,
        ArtifactWriteOptions? options = null, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(path, content, options, cancellationToken);

    public Task<bool> DeleteAsync(string path, CancellationToken cancellationToken = default) =>
        inner.DeleteAsync(path, cancellationToken);

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var info in inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
            yield return info;
    }

    public Task<ArtifactInfo> CopyAsync(string from, string to, CancellationToken cancellationToken = default) =>
        inner.CopyAsync(from, to, cancellationToken);

    public Task<ArtifactInfo> MoveAsync(string from, string to, CancellationToken cancellationToken = default) =>
        inner.MoveAsync(from, to, cancellationToken);
}
