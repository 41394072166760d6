//! Appends cut to the size a peer takes.
//!
//! raft-rs bounds an append message by `max_size_per_msg` when it builds
//! one, but with `batch_append` it then merges the appends of one turn to
//! the same peer into a single message, whatever their size: a follower
//! catching up (up to 256 messages in flight) could be sent one of a few
//! hundred MiB, which its transport refuses whole, so that it caught up
//! only a probe at a time. A message cut in consecutive pieces, each
//! anchored at the entry before it, is what raft-rs would have sent
//! without the merge.

use raft::eraftpb::{Entry, Message, MessageType};

use crate::entry_cache;

/// `message`, cut into appends of at most `max_bytes` of entries each (an
/// entry larger than that travels alone); any other message as it is.
pub(crate) fn split_append(mut message: Message, max_bytes: u64) -> Vec<Message> {
    let oversized = message.get_msg_type() == MessageType::MsgAppend
        && message.entries.len() > 1
        && message.entries.iter().map(entry_cache::size).sum::<u64>() > max_bytes;
    if !oversized {
        return vec![message];
    }
    let entries = message.take_entries().into_vec();
    let header = message;
    let mut pieces = Vec::new();
    let mut piece: Vec<Entry> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let size = entry_cache::size(&entry);
        if !piece.is_empty() && bytes + size > max_bytes {
            pieces.push(std::mem::take(&mut piece));
            bytes = 0;
        }
        bytes += size;
        piece.push(entry);
    }
    pieces.push(piece);

    // Each piece follows the entry before its first: the message's own
    // anchor for the first, the last entry of the piece before for the rest.
    let (mut index, mut log_term) = (header.index, header.log_term);
    pieces
        .into_iter()
        .map(|entries| {
            let mut message = header.clone();
            message.index = index;
            message.log_term = log_term;
            if let Some(last) = entries.last() {
                (index, log_term) = (last.index, last.term);
            }
            message.set_entries(entries.into());
            message
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, bytes: usize) -> Entry {
        Entry {
            index,
            term,
            data: vec![7; bytes].into(),
            ..Default::default()
        }
    }

    fn append(entries: Vec<Entry>) -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgAppend);
        message.to = 2;
        message.from = 1;
        message.term = 3;
        message.commit = 9;
        message.index = 4;
        message.log_term = 2;
        message.set_entries(entries.into());
        message
    }

    #[test]
    fn an_append_over_the_limit_is_cut_into_anchored_pieces() {
        let entries = vec![
            entry(5, 2, 600),
            entry(6, 3, 600),
            entry(7, 3, 600),
            entry(8, 3, 2000),
            entry(9, 3, 10),
        ];
        let pieces = split_append(append(entries.clone()), 1300);
        let anchors: Vec<(u64, u64)> = pieces.iter().map(|m| (m.index, m.log_term)).collect();
        let indexes: Vec<Vec<u64>> = pieces
            .iter()
            .map(|m| m.entries.iter().map(|e| e.index).collect())
            .collect();
        // Two of 600 fit in 1,300; the one of 2,000 goes alone.
        assert_eq!(indexes, vec![vec![5, 6], vec![7], vec![8], vec![9]]);
        assert_eq!(anchors, vec![(4, 2), (6, 3), (7, 3), (8, 3)]);
        for piece in &pieces {
            assert_eq!((piece.to, piece.from, piece.term, piece.commit), (2, 1, 3, 9));
            assert_eq!(piece.get_msg_type(), MessageType::MsgAppend);
        }
        let all: Vec<Entry> = pieces.into_iter().flat_map(|m| m.entries.into_vec()).collect();
        assert_eq!(all, entries);
    }

    #[test]
    fn what_fits_and_other_messages_pass_as_they_are() {
        let small = append(vec![entry(5, 2, 100), entry(6, 2, 100)]);
        assert_eq!(split_append(small.clone(), 1024), vec![small]);
        let single = append(vec![entry(5, 2, 5000)]);
        assert_eq!(split_append(single.clone(), 1024), vec![single]);
        let mut heartbeat = Message::default();
        heartbeat.set_msg_type(MessageType::MsgHeartbeat);
        assert_eq!(split_append(heartbeat.clone(), 0), vec![heartbeat]);
    }
}
