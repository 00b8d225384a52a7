//! A deployment package as AWS Lambda takes it: a ZIP archive of files, stored without
//! compression and with fixed timestamps, so the same files always give the same bytes (and
//! the same content hash, so unchanged code is never uploaded again).

/// 1980-01-01 00:00, the earliest time a ZIP entry can carry (MS-DOS date and time).
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// Made by Unix (3), ZIP 2.0: the external attributes carry Unix permissions.
const MADE_BY: u16 = (3 << 8) | 20;
const NEEDS: u16 = 20;
/// A regular file, `rw-r--r--`: Lambda's runtime user must be able to read the code.
const FILE_MODE: u32 = 0o100_644 << 16;

/// The archive of `files` (`(path inside the archive, content)`), in the order given.
pub fn stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut archive = Vec::new();
    let mut directory = Vec::new();
    for (name, content) in files {
        let offset = archive.len() as u32;
        let crc = crc32(content);
        let size = content.len() as u32;
        // Local file header.
        archive.extend_from_slice(&0x0403_4b50_u32.to_le_bytes());
        archive.extend_from_slice(&NEEDS.to_le_bytes());
        archive.extend_from_slice(&0_u16.to_le_bytes()); // flags
        archive.extend_from_slice(&0_u16.to_le_bytes()); // stored
        archive.extend_from_slice(&DOS_TIME.to_le_bytes());
        archive.extend_from_slice(&DOS_DATE.to_le_bytes());
        archive.extend_from_slice(&crc.to_le_bytes());
        archive.extend_from_slice(&size.to_le_bytes());
        archive.extend_from_slice(&size.to_le_bytes());
        archive.extend_from_slice(&(name.len() as u16).to_le_bytes());
        archive.extend_from_slice(&0_u16.to_le_bytes()); // extra
        archive.extend_from_slice(name.as_bytes());
        archive.extend_from_slice(content);
        // Its central directory entry.
        directory.extend_from_slice(&0x0201_4b50_u32.to_le_bytes());
        directory.extend_from_slice(&MADE_BY.to_le_bytes());
        directory.extend_from_slice(&NEEDS.to_le_bytes());
        directory.extend_from_slice(&0_u16.to_le_bytes());
        directory.extend_from_slice(&0_u16.to_le_bytes());
        directory.extend_from_slice(&DOS_TIME.to_le_bytes());
        directory.extend_from_slice(&DOS_DATE.to_le_bytes());
        directory.extend_from_slice(&crc.to_le_bytes());
        directory.extend_from_slice(&size.to_le_bytes());
        directory.extend_from_slice(&size.to_le_bytes());
        directory.extend_from_slice(&(name.len() as u16).to_le_bytes());
        directory.extend_from_slice(&0_u16.to_le_bytes()); // extra
        directory.extend_from_slice(&0_u16.to_le_bytes()); // comment
        directory.extend_from_slice(&0_u16.to_le_bytes()); // disk
        directory.extend_from_slice(&0_u16.to_le_bytes()); // internal attributes
        directory.extend_from_slice(&FILE_MODE.to_le_bytes());
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
    }
    let directory_offset = archive.len() as u32;
    let entries = files.len() as u16;
    archive.extend_from_slice(&directory);
    // End of central directory.
    archive.extend_from_slice(&0x0605_4b50_u32.to_le_bytes());
    archive.extend_from_slice(&0_u16.to_le_bytes());
    archive.extend_from_slice(&0_u16.to_le_bytes());
    archive.extend_from_slice(&entries.to_le_bytes());
    archive.extend_from_slice(&entries.to_le_bytes());
    archive.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    archive.extend_from_slice(&directory_offset.to_le_bytes());
    archive.extend_from_slice(&0_u16.to_le_bytes());
    archive
}

/// CRC-32 (IEEE 802.3, reflected), as ZIP uses it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_same_files_give_the_same_bytes() {
        let files = vec![("handler.py".to_string(), b"print('hi')\n".to_vec())];
        assert_eq!(stored(&files), stored(&files));
        let archive = stored(&files);
        assert!(archive.starts_with(b"PK\x03\x04"));
        assert_eq!(
            &archive[archive.len() - 22..archive.len() - 18],
            b"PK\x05\x06"
        );
    }
}
