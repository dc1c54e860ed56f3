using System.IO.Compression;

namespace ScaleGrow.Data;

/// <summary>
/// Opening data files with one error vocabulary: every failure becomes a <see cref="DataFormatException"/> whose
/// one-line message starts with the file's path. Gzip is recognised by its magic bytes (1f 8b), never by the name.
/// </summary>
internal static class DataFiles
{
    /// <summary>A buffer large enough that the kernel and the inflater work in big sequential chunks.</summary>
    private const int BufferSize = 1 << 20;

    /// <summary>
    /// Deflate cannot expand data by more than about 1032:1, so a gzip file of n bytes cannot hold more than this many
    /// times n; a header that declares more is corrupt (and is refused before a large buffer is allocated).
    /// </summary>
    internal const long MaxGzipExpansion = 1100;

    /// <summary>An open data file: the decompressed stream, whether it was gzip, and the file's size on disk.</summary>
    internal sealed class Opened(Stream stream, bool gzip, long fileLength) : IDisposable
    {
        public Stream Stream { get; } = stream;
        public bool Gzip { get; } = gzip;
        public long FileLength { get; } = fileLength;
        public void Dispose() => Stream.Dispose();
    }

    public static Opened Open(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize,
                FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFormatException($"{path}: file not found");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot open: {OneLine(e.Message)}", e);
        }
        try
        {
            Span<byte> head = stackalloc byte[2];
            int n = file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            file.Position = 0;
            bool gzip = n == 2 && head[0] == 0x1f && head[1] == 0x8b;
            Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: false) : file;
            return new Opened(stream, gzip, file.Length);
        }
        catch (IOException e)
        {
            file.Dispose();
            throw new DataFormatException($"{path}: read error: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; returns the count read.</summary>
    public static int ReadFully(string path, Stream stream, Span<byte> buffer)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException($"{path}: corrupt gzip data: {OneLine(e.Message)}", e);
        }
        catch (IOException e)
        {
            throw new DataFormatException($"{path}: read error: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>Throws unless the stream is at its end (a file longer than its header says is malformed).</summary>
    public static void ExpectEnd(string path, Stream stream, string what)
    {
        Span<byte> probe = stackalloc byte[1];
        if (ReadFully(path, stream, probe) != 0)
            throw new DataFormatException($"{path}: has bytes after the end of the {what}");
    }

    /// <summary>A user's whole (small) text file; <paramref name="expected"/> says what it should be ("a UTF-8 text
    /// file") when the path is a directory.</summary>
    public static byte[] ReadAllBytes(string path, string expected)
    {
        if (!File.Exists(path))
            throw new DataFormatException(Directory.Exists(path)
                ? $"{path}: is a directory, expected {expected}"
                : $"{path}: file not found");
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read: {OneLine(e.Message)}", e);
        }
    }

    public static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
