// SPDX-License-Identifier: GPL-2.0
/*
 * virtio_gpu_compute.c - guest driver of the virtio-gpu-compute device.
 *
 * Each device gets a character device /dev/vgcN.  Each open file is one
 * session on the device: open sends OPEN_SESSION, release sends
 * CLOSE_SESSION (also when the process was killed), and VGC_IOC_CALL sends
 * the caller's frames straight from its pinned pages and sleeps until the
 * device returns the chain (completion by interrupt).
 *
 * The device, the requests and the ioctls are described in
 * docs/virtio-device.md and include/linux/virtio_gpu_compute.h.
 *
 * Lifetime rules:
 *  - struct vgc_device is reference counted through its struct device; the
 *    probe holds one reference and every open file holds one, so an ioctl
 *    after the device was unplugged finds the structure and gets -ENODEV.
 *  - A request given to the device belongs to the device until it comes
 *    back (used ring, or detached after a reset).  A caller that is
 *    killed meanwhile marks its request orphaned and returns; the request,
 *    and the user pages it pins, are freed when the device returns it.
 *  - Sessions live as long as the device's current incarnation: when the
 *    device needs a reset (its vhost-user backend died), a work item resets
 *    it, fails what it still held with -ENODEV and starts it again.  The
 *    generation number changes, so the files opened before get -ENODEV
 *    (their sessions died with the backend) and never send a stale session
 *    id to the new backend; new opens get new sessions.
 */

#include <linux/cdev.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/virtio_gpu_compute.h>

#define VGC_MAX_DEVICES		64
#define VGC_CALL_F_ALL		VGC_CALL_F_WANT_REPLY

struct vgc_device {
	struct device dev;		/* /dev/vgcN; its refcount owns us */
	struct cdev cdev;
	struct virtio_device *vdev;	/* only while ready */
	struct virtqueue *vq;		/* only while ready */
	int index;

	/* From the config space, read once at probe. */
	u32 protocol_version;
	u32 num_gpus;
	u32 max_payload;
	u32 max_segments;
	u32 max_desc;			/* descriptors one chain may use */
	u32 max_pin_pages;		/* pages one call may pin */

	spinlock_t lock;		/* vq, ready, gen, inflight, reap, ncompleted */
	bool ready;
	u32 gen;			/* incarnation: changes at every reset */
	struct list_head inflight;	/* requests owned by the device */
	struct list_head reap;		/* orphans the device gave back */
	unsigned long ncompleted;	/* wakes submitters waiting for room */
	wait_queue_head_t room_wq;
	struct work_struct reap_work;
	struct work_struct reset_work;	/* the device needs a reset */
};

struct vgc_request {
	struct list_head node;		/* vgc->inflight, vgc->reap */
	struct completion done;
	bool completed;			/* under vgc->lock */
	bool orphan;			/* under vgc->lock: nobody waits */
	int error;			/* -ENODEV: the device went away */
	u32 gen;			/* incarnation it belongs to */

	/* Device-visible headers: kmalloc'ed with the request, never on stack. */
	struct virtio_gpu_compute_req req;
	struct virtio_gpu_compute_resp resp;

	struct page **pages;		/* request pages, then reply pages */
	unsigned int nreq_pages;
	unsigned int nreply_pages;
	unsigned int nout;		/* entries of the out list */
	u64 reply_room;			/* bytes of reply buffer described */
	struct scatterlist *sg;		/* out list, then in list */
	struct scatterlist hdr_sg[2];	/* OPEN/CLOSE: headers only */
};

struct vgc_file {
	struct vgc_device *vgc;
	u32 session;
	u32 gen;			/* incarnation of the session */
};

static dev_t vgc_devt;
static struct class *vgc_class;
static DEFINE_IDA(vgc_ida);

static inline struct vgc_device *to_vgc(struct device *dev)
{
	return container_of(dev, struct vgc_device, dev);
}

/* ---- requests ------------------------------------------------------------ */

static struct vgc_request *vgc_req_alloc(u32 type, u32 session, u32 gen,
					 gfp_t gfp)
{
	struct vgc_request *r = kzalloc(sizeof(*r), gfp);

	if (!r)
		return NULL;
	init_completion(&r->done);
	r->gen = gen;
	r->req.type = cpu_to_le32(type);
	r->req.session = cpu_to_le32(session);
	return r;
}

static void vgc_req_free(struct vgc_request *r)
{
	if (r->pages) {
		unpin_user_pages(r->pages, r->nreq_pages);
		unpin_user_pages_dirty_lock(r->pages + r->nreq_pages,
					    r->nreply_pages, true);
		kvfree(r->pages);
	}
	kvfree(r->sg);
	kfree(r);
}

/* The device gave @r back (or never will, @error != 0).  Lock held. */
static void vgc_req_finish_locked(struct vgc_device *vgc,
				  struct vgc_request *r, int error)
{
	list_del(&r->node);
	r->completed = true;
	r->error = error;
	vgc->ncompleted++;
	if (r->orphan) {
		list_add_tail(&r->node, &vgc->reap);
		schedule_work(&vgc->reap_work);
	} else {
		complete(&r->done);
	}
}

static void vgc_vq_done(struct virtqueue *vq)
{
	struct vgc_device *vgc = vq->vdev->priv;
	struct vgc_request *r;
	unsigned long flags;
	unsigned int len;

	spin_lock_irqsave(&vgc->lock, flags);
	do {
		virtqueue_disable_cb(vq);
		while ((r = virtqueue_get_buf(vq, &len)))
			vgc_req_finish_locked(vgc, r, 0);
	} while (!virtqueue_enable_cb(vq));
	spin_unlock_irqrestore(&vgc->lock, flags);
	wake_up_all(&vgc->room_wq);
}

/*
 * Give @r to the device.  When the ring is full, sleep until a request
 * comes back: killable for a caller, uninterruptible for CLOSE_SESSION
 * (which must reach the device even from an exiting task).  OPEN_SESSION
 * joins the current incarnation; other requests must belong to it.
 * Returns 0, -ENODEV (device gone or reset), -EINTR (killed) or -ENOMEM.
 */
static int vgc_submit(struct vgc_device *vgc, struct vgc_request *r,
		      bool killable)
{
	struct scatterlist *sgs[2];
	unsigned long flags, seen;
	bool notify;
	int err;

	if (r->sg) {
		sgs[0] = r->sg;
		sgs[1] = r->sg + r->nout;
	} else {
		sg_init_one(&r->hdr_sg[0], &r->req, sizeof(r->req));
		sg_init_one(&r->hdr_sg[1], &r->resp, sizeof(r->resp));
		sgs[0] = &r->hdr_sg[0];
		sgs[1] = &r->hdr_sg[1];
	}

	for (;;) {
		spin_lock_irqsave(&vgc->lock, flags);
		if (le32_to_cpu(r->req.type) == VIRTIO_GPU_COMPUTE_OPEN_SESSION)
			r->gen = vgc->gen;
		if (!vgc->ready || r->gen != vgc->gen) {
			spin_unlock_irqrestore(&vgc->lock, flags);
			return -ENODEV;
		}
		err = virtqueue_add_sgs(vgc->vq, sgs, 1, 1, r, GFP_ATOMIC);
		if (!err) {
			list_add_tail(&r->node, &vgc->inflight);
			notify = virtqueue_kick_prepare(vgc->vq);
			spin_unlock_irqrestore(&vgc->lock, flags);
			if (notify)
				virtqueue_notify(vgc->vq);
			return 0;
		}
		seen = vgc->ncompleted;
		spin_unlock_irqrestore(&vgc->lock, flags);
		if (err != -ENOSPC)
			return err;

#define VGC_ROOM_OR_GONE \
	(READ_ONCE(vgc->ncompleted) != seen || !READ_ONCE(vgc->ready) || \
	 READ_ONCE(vgc->gen) != r->gen)
		if (killable) {
			if (wait_event_killable(vgc->room_wq, VGC_ROOM_OR_GONE))
				return -EINTR;
		} else {
			wait_event(vgc->room_wq, VGC_ROOM_OR_GONE);
		}
#undef VGC_ROOM_OR_GONE
	}
}

/*
 * Wait for @r.  Returns 0 once the device gave it back (the caller owns and
 * frees it), or -EINTR when the caller was killed first: @r is then
 * orphaned and freed when the device returns it.
 */
static int vgc_wait(struct vgc_device *vgc, struct vgc_request *r)
{
	unsigned long flags;
	int orphaned = 0;

	if (!wait_for_completion_killable(&r->done))
		return 0;
	spin_lock_irqsave(&vgc->lock, flags);
	if (!r->completed) {
		r->orphan = true;
		orphaned = -EINTR;
	}
	spin_unlock_irqrestore(&vgc->lock, flags);
	return orphaned;
}

/*
 * Fire-and-forget CLOSE_SESSION: the request frees itself when it returns.
 * A session of an earlier incarnation died with it: nothing is sent.
 */
static void vgc_close_session(struct vgc_device *vgc, u32 session, u32 gen)
{
	struct vgc_request *r;

	r = vgc_req_alloc(VIRTIO_GPU_COMPUTE_CLOSE_SESSION, session, gen,
			  GFP_KERNEL | __GFP_NOFAIL);
	r->orphan = true;
	if (vgc_submit(vgc, r, false))
		vgc_req_free(r);	/* device gone: the session went with it */
}

static void vgc_reap_work(struct work_struct *work)
{
	struct vgc_device *vgc = container_of(work, struct vgc_device,
					      reap_work);
	struct vgc_request *r, *tmp;
	LIST_HEAD(list);

	spin_lock_irq(&vgc->lock);
	list_splice_init(&vgc->reap, &list);
	spin_unlock_irq(&vgc->lock);

	list_for_each_entry_safe(r, tmp, &list, node) {
		list_del(&r->node);
		/* Its opener was killed: close the session nobody will use. */
		if (le32_to_cpu(r->req.type) == VIRTIO_GPU_COMPUTE_OPEN_SESSION &&
		    !r->error &&
		    le32_to_cpu(r->resp.status) == VIRTIO_GPU_COMPUTE_S_OK)
			vgc_close_session(vgc, le32_to_cpu(r->resp.session),
					  r->gen);
		vgc_req_free(r);
	}
}

static const char *vgc_status_name(u32 status)
{
	switch (status) {
	case VIRTIO_GPU_COMPUTE_S_OK:		return "ok";
	case VIRTIO_GPU_COMPUTE_S_BAD_REQUEST:	return "bad request";
	case VIRTIO_GPU_COMPUTE_S_NO_SESSION:	return "no session";
	case VIRTIO_GPU_COMPUTE_S_NO_SPACE:	return "no space for the reply";
	case VIRTIO_GPU_COMPUTE_S_BACKEND:	return "backend failed";
	case VIRTIO_GPU_COMPUTE_S_LIMIT:	return "too many sessions";
	default:				return "unknown status";
	}
}

/* The outcome of a request the device gave back, as an errno. */
static int vgc_req_result(struct vgc_device *vgc, struct vgc_request *r)
{
	u32 status = le32_to_cpu(r->resp.status);

	if (r->error)
		return r->error;
	if (status == VIRTIO_GPU_COMPUTE_S_OK)
		return 0;
	dev_err_ratelimited(&vgc->dev, "request type %u session %u: %s (%u)\n",
			    le32_to_cpu(r->req.type),
			    le32_to_cpu(r->req.session),
			    vgc_status_name(status), status);
	if (status == VIRTIO_GPU_COMPUTE_S_LIMIT)
		return -EBUSY;
	return -EIO;
}

/* Is the session of @vf still on the device? */
static bool vgc_file_alive(struct vgc_file *vf)
{
	return READ_ONCE(vf->vgc->ready) && READ_ONCE(vf->vgc->gen) == vf->gen;
}

/* ---- VGC_IOC_CALL: pinning user segments ---------------------------------- */

/* Pages spanned by @nsegs segments; zero-length ones span none. */
static int vgc_count_pages(const struct vgc_ioctl_segment *segs,
			   unsigned int nsegs, unsigned int limit,
			   unsigned int *npages)
{
	unsigned int i;
	u64 end, n;

	*npages = 0;
	for (i = 0; i < nsegs; i++) {
		if (!segs[i].len)
			continue;
		if (check_add_overflow(segs[i].addr, segs[i].len, &end) ||
		    end > TASK_SIZE_MAX)
			return -EFAULT;
		n = (PAGE_ALIGN(end) - (segs[i].addr & PAGE_MASK)) >> PAGE_SHIFT;
		if (n > limit - *npages)
			return -E2BIG;
		*npages += n;
	}
	return 0;
}

/* Can @pg, at offset 0, extend @sg (physically contiguous, no overflow)? */
static bool vgc_sg_extends(struct scatterlist *sg, struct page *pg)
{
	unsigned int end = sg->offset + sg->length;

	return offset_in_page(end) == 0 && sg->length <= SZ_1G &&
	       page_to_pfn(sg_page(sg)) + end / PAGE_SIZE == page_to_pfn(pg);
}

struct vgc_pin {
	struct page **pages;		/* room for @maxpages pages */
	struct scatterlist *sg;		/* room for @maxents entries */
	unsigned int maxpages;
	unsigned int maxents;
	bool truncate;			/* stop quietly when either is full */
	unsigned int npinned;		/* (out) pages pinned */
	unsigned int nents;		/* (out) entries used */
	u64 bytes;			/* (out) bytes described */
};

/*
 * Pin the pages of @segs and describe them in p->sg, merging physically
 * adjacent pages into one entry.  When the pages or entries run out, a
 * truncating pin stops there (the device gets less room than asked for)
 * and any other fails with -E2BIG.  On error nothing stays pinned.
 */
static int vgc_pin_segments(const struct vgc_ioctl_segment *segs,
			    unsigned int nsegs, unsigned int gup_flags,
			    struct vgc_pin *p)
{
	struct scatterlist *last = NULL;
	unsigned int i, j;
	int ret;

	p->npinned = 0;
	p->nents = 0;
	p->bytes = 0;
	for (i = 0; i < nsegs; i++) {
		u64 addr = segs[i].addr, left = segs[i].len;

		while (left) {
			unsigned int off = offset_in_page(addr), n;
			struct page **pages = p->pages + p->npinned;

			n = min_t(u64, 64, (PAGE_ALIGN(addr + left) -
					    (addr & PAGE_MASK)) >> PAGE_SHIFT);
			n = min(n, p->maxpages - p->npinned);
			if (!n) {
				if (p->truncate)
					return 0;
				ret = -E2BIG;
				goto err;
			}
			ret = pin_user_pages_fast(addr & PAGE_MASK, n, gup_flags,
						  pages);
			if (ret != n) {
				if (ret > 0)
					unpin_user_pages(pages, ret);
				ret = ret < 0 ? ret : -EFAULT;
				goto err;
			}
			for (j = 0; j < n; j++) {
				unsigned int len = min_t(u64, left,
							 PAGE_SIZE - off);

				if (last && !off && vgc_sg_extends(last, pages[j])) {
					last->length += len;
				} else if (p->nents < p->maxents) {
					last = &p->sg[p->nents++];
					sg_set_page(last, pages[j], len, off);
				} else if (p->truncate) {
					unpin_user_pages(pages + j, n - j);
					p->npinned += j;
					return 0;
				} else {
					p->npinned += n;
					ret = -E2BIG;
					goto err;
				}
				p->bytes += len;
				addr += len;
				left -= len;
				off = 0;
			}
			p->npinned += n;
		}
	}
	return 0;
err:
	unpin_user_pages(p->pages, p->npinned);
	p->npinned = 0;
	p->nents = 0;
	return ret;
}

static long vgc_ioctl_call(struct vgc_file *vf, void __user *uarg)
{
	const size_t minsz = offsetofend(struct vgc_ioctl_call, reply_len);
	struct vgc_ioctl_segment *rsegs = NULL, *wsegs = NULL;
	struct vgc_device *vgc = vf->vgc;
	unsigned int nreq, nrep, nents;
	struct vgc_ioctl_call call;
	struct vgc_request *r;
	struct vgc_pin pin;
	struct scatterlist *in;
	u32 max_pin_pages;
	long ret;

	if (copy_from_user(&call, uarg, minsz))
		return -EFAULT;
	if (call.argsz < minsz || call.flags & ~VGC_CALL_F_ALL)
		return -EINVAL;
	if (!call.req_nsegs || call.req_nsegs > vgc->max_segments ||
	    call.reply_nsegs > vgc->max_segments ||
	    !(call.flags & VGC_CALL_F_WANT_REPLY) != !call.reply_nsegs)
		return -EINVAL;
	if (!vgc_file_alive(vf))
		return -ENODEV;
	/* A reset may change it: read it once. */
	max_pin_pages = READ_ONCE(vgc->max_pin_pages);

	rsegs = memdup_user(u64_to_user_ptr(call.req_segs),
			    array_size(call.req_nsegs, sizeof(*rsegs)));
	if (IS_ERR(rsegs))
		return PTR_ERR(rsegs);
	if (call.reply_nsegs) {
		wsegs = memdup_user(u64_to_user_ptr(call.reply_segs),
				    array_size(call.reply_nsegs,
					       sizeof(*wsegs)));
		if (IS_ERR(wsegs)) {
			ret = PTR_ERR(wsegs);
			wsegs = NULL;
			goto out_segs;
		}
	}

	ret = vgc_count_pages(rsegs, call.req_nsegs, max_pin_pages, &nreq);
	if (ret)
		goto out_segs;
	ret = -EINVAL;
	if (!nreq)
		goto out_segs;
	/* Reply room beyond what the chain can describe is not pinned. */
	ret = vgc_count_pages(wsegs, call.reply_nsegs, UINT_MAX, &nrep);
	if (ret)
		goto out_segs;
	nrep = min(nrep, max_pin_pages - nreq);

	ret = -ENOMEM;
	r = vgc_req_alloc(VIRTIO_GPU_COMPUTE_CALL, vf->session, vf->gen,
			  GFP_KERNEL);
	if (!r)
		goto out_segs;
	r->pages = kvmalloc_array(nreq + nrep, sizeof(*r->pages), GFP_KERNEL);
	/* Two descriptors go to the request and response headers. */
	nents = READ_ONCE(vgc->max_desc);
	r->sg = kvmalloc_array(nents, sizeof(*r->sg), GFP_KERNEL);
	if (!r->pages || !r->sg)
		goto out_nopages;
	sg_init_table(r->sg, nents);

	/* out: header, frames; in: response, reply. */
	pin = (struct vgc_pin){
		.pages = r->pages,
		.maxpages = nreq,
		.sg = r->sg + 1,
		.maxents = nents - 2,
	};
	ret = vgc_pin_segments(rsegs, call.req_nsegs, 0, &pin);
	if (ret)
		goto out_nopages;
	r->nreq_pages = pin.npinned;
	r->nout = 1 + pin.nents;
	sg_set_buf(&r->sg[0], &r->req, sizeof(r->req));
	sg_mark_end(&r->sg[r->nout - 1]);

	in = r->sg + r->nout;
	pin = (struct vgc_pin){
		.pages = r->pages + r->nreq_pages,
		.maxpages = nrep,
		.sg = in + 1,
		.maxents = nents - r->nout - 1,
		.truncate = true,
	};
	ret = vgc_pin_segments(wsegs, call.reply_nsegs, FOLL_WRITE, &pin);
	if (ret) {
		unpin_user_pages(r->pages, r->nreq_pages);
		r->nreq_pages = 0;
		goto out_nopages;
	}
	r->nreply_pages = pin.npinned;
	r->reply_room = pin.bytes;
	sg_init_marker(in, 1 + pin.nents);
	sg_set_buf(&in[0], &r->resp, sizeof(r->resp));

	ret = vgc_submit(vgc, r, true);
	if (ret)
		goto out_req;
	ret = vgc_wait(vgc, r);
	if (ret)
		goto out_segs;		/* orphaned: the device frees it */

	ret = vgc_req_result(vgc, r);
	if (!ret) {
		u64 len = le32_to_cpu(r->resp.reply_len);

		if (len > r->reply_room) {
			dev_err_ratelimited(&vgc->dev,
					    "session %u: reply of %llu bytes in %llu\n",
					    vf->session, len, r->reply_room);
			ret = -EIO;
		} else if (put_user(len, &((struct vgc_ioctl_call __user *)
					  uarg)->reply_len)) {
			ret = -EFAULT;
		}
	}
	goto out_req;

out_nopages:
	kvfree(r->pages);
	r->pages = NULL;
out_req:
	vgc_req_free(r);
out_segs:
	kfree(wsegs);
	kfree(rsegs);
	return ret;
}

static long vgc_ioctl_info(struct vgc_file *vf, void __user *uarg)
{
	const size_t minsz = offsetofend(struct vgc_ioctl_info, reserved);
	struct vgc_device *vgc = vf->vgc;
	struct vgc_ioctl_info info;

	if (copy_from_user(&info, uarg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.flags)
		return -EINVAL;
	if (!vgc_file_alive(vf))
		return -ENODEV;
	info.protocol_version = vgc->protocol_version;
	info.num_gpus = vgc->num_gpus;
	info.max_payload = vgc->max_payload;
	/* What one chain may really use: the ring may be shorter. */
	info.max_segments = vgc->max_desc;
	info.session = vf->session;
	info.reserved = 0;
	if (copy_to_user(uarg, &info, minsz))
		return -EFAULT;
	return 0;
}

/* ---- file operations ------------------------------------------------------ */

static int vgc_open(struct inode *inode, struct file *file)
{
	struct vgc_device *vgc = container_of(inode->i_cdev,
					      struct vgc_device, cdev);
	struct vgc_request *r;
	struct vgc_file *vf;
	int ret;

	vf = kzalloc(sizeof(*vf), GFP_KERNEL);
	if (!vf)
		return -ENOMEM;
	r = vgc_req_alloc(VIRTIO_GPU_COMPUTE_OPEN_SESSION, 0, 0, GFP_KERNEL);
	if (!r) {
		kfree(vf);
		return -ENOMEM;
	}
	get_device(&vgc->dev);
	vf->vgc = vgc;

	ret = vgc_submit(vgc, r, true);
	if (ret) {
		vgc_req_free(r);
		goto err;
	}
	ret = vgc_wait(vgc, r);
	if (ret)
		goto err;	/* the orphan closes the session it gets */
	ret = vgc_req_result(vgc, r);
	vf->session = le32_to_cpu(r->resp.session);
	vf->gen = r->gen;
	vgc_req_free(r);
	if (ret)
		goto err;

	file->private_data = vf;
	return stream_open(inode, file);

err:
	put_device(&vgc->dev);
	kfree(vf);
	return ret;
}

static int vgc_release(struct inode *inode, struct file *file)
{
	struct vgc_file *vf = file->private_data;

	vgc_close_session(vf->vgc, vf->session, vf->gen);
	put_device(&vf->vgc->dev);
	kfree(vf);
	return 0;
}

static long vgc_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vgc_file *vf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VGC_IOC_INFO:
		return vgc_ioctl_info(vf, uarg);
	case VGC_IOC_CALL:
		return vgc_ioctl_call(vf, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vgc_fops = {
	.owner		= THIS_MODULE,
	.open		= vgc_open,
	.release	= vgc_release,
	.unlocked_ioctl	= vgc_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= no_llseek,
};

/* ---- probe and remove ------------------------------------------------------ */

static void vgc_dev_release(struct device *dev)
{
	struct vgc_device *vgc = to_vgc(dev);

	ida_free(&vgc_ida, vgc->index);
	kfree(vgc);
}

static int vgc_init_vqs(struct vgc_device *vgc)
{
	struct virtio_device *vdev = vgc->vdev;
	struct virtqueue *vq;
	unsigned int ring;
	u32 max_desc;

	vq = virtio_find_single_vq(vdev, vgc_vq_done, "requests");
	if (IS_ERR(vq))
		return PTR_ERR(vq);

	/* Without indirect descriptors a chain must fit the ring. */
	ring = virtqueue_get_vring_size(vq);
	max_desc = vgc->max_segments;
	if (!virtio_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC))
		max_desc = min(max_desc, ring);
	if (max_desc < 3) {
		dev_err(&vdev->dev, "chains of %u descriptors are too short\n",
			max_desc);
		vdev->config->del_vqs(vdev);
		return -EINVAL;
	}
	vgc->vq = vq;
	WRITE_ONCE(vgc->max_desc, max_desc);
	/* Two frames and a reply of max_payload, with some slack. */
	WRITE_ONCE(vgc->max_pin_pages,
		   DIV_ROUND_UP(3ULL * min(vgc->max_payload, SZ_256M),
				PAGE_SIZE) + 64);
	return 0;
}

static void vgc_read_config(struct vgc_device *vgc)
{
	struct virtio_device *vdev = vgc->vdev;

	virtio_cread_le(vdev, struct virtio_gpu_compute_config,
			protocol_version, &vgc->protocol_version);
	virtio_cread_le(vdev, struct virtio_gpu_compute_config,
			num_gpus, &vgc->num_gpus);
	virtio_cread_le(vdev, struct virtio_gpu_compute_config,
			max_payload, &vgc->max_payload);
	virtio_cread_le(vdev, struct virtio_gpu_compute_config,
			max_segments, &vgc->max_segments);
}

/*
 * The tail of probe, also restore and the end of a reset: read the config,
 * create the queue, DRIVER_OK, accept requests.
 */
static int vgc_start(struct vgc_device *vgc)
{
	int ret;

	vgc_read_config(vgc);
	ret = vgc_init_vqs(vgc);
	if (ret)
		return ret;

	virtio_device_ready(vgc->vdev);
	spin_lock_irq(&vgc->lock);
	vgc->ready = true;
	spin_unlock_irq(&vgc->lock);
	return 0;
}

/*
 * Undo vgc_start: no new requests, reset the device (it stops touching
 * guest memory, so the requests it held are ours again), complete what it
 * returned, fail what it did not with -ENODEV, delete the queue.  The
 * incarnation ends: the sessions of open files are gone.
 */
static void vgc_stop(struct vgc_device *vgc)
{
	struct virtio_device *vdev = vgc->vdev;
	struct vgc_request *r;
	unsigned int len;

	/* No new requests; submitters waiting for room give up. */
	spin_lock_irq(&vgc->lock);
	vgc->ready = false;
	vgc->gen++;
	spin_unlock_irq(&vgc->lock);
	wake_up_all(&vgc->room_wq);

	virtio_reset_device(vdev);
	if (!vgc->vq)
		return;		/* a failed restart left no queue */

	spin_lock_irq(&vgc->lock);
	while ((r = virtqueue_get_buf(vgc->vq, &len)))
		vgc_req_finish_locked(vgc, r, 0);
	while ((r = virtqueue_detach_unused_buf(vgc->vq)))
		vgc_req_finish_locked(vgc, r, -ENODEV);
	WARN_ON(!list_empty(&vgc->inflight));
	spin_unlock_irq(&vgc->lock);
	wake_up_all(&vgc->room_wq);

	vdev->config->del_vqs(vdev);
	vgc->vq = NULL;
}

/*
 * The device needs a reset (its backend went away): fail everything it
 * held, reset it, negotiate again as the virtio core does at restore and
 * start over.  Files opened before get -ENODEV from now on.
 */
static void vgc_reset_work(struct work_struct *work)
{
	struct vgc_device *vgc = container_of(work, struct vgc_device,
					      reset_work);
	struct virtio_device *vdev = vgc->vdev;
	int ret;

	dev_warn(&vgc->dev, "device needs reset: its sessions are gone\n");
	vgc_stop(vgc);

	virtio_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	ret = vdev->config->finalize_features(vdev);
	if (ret)
		goto err;
	virtio_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		ret = -ENODEV;
		goto err;
	}
	ret = vgc_start(vgc);
	if (ret)
		goto err;
	dev_info(&vgc->dev, "device reset: protocol %u, %u GPU(s)\n",
		 vgc->protocol_version, vgc->num_gpus);
	/*
	 * The backend may have gone away again while we restarted: the device
	 * notifies a config change only once DRIVER_OK is set, so that
	 * interrupt may never have come.  Look, and go round again.
	 */
	if (vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_NEEDS_RESET)
		schedule_work(&vgc->reset_work);
	return;

err:
	dev_err(&vgc->dev, "cannot restart the device after a reset: %d\n", ret);
	virtio_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
}

static int vgc_probe(struct virtio_device *vdev)
{
	struct vgc_device *vgc;
	int ret;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config access disabled\n");
		return -EINVAL;
	}

	vgc = kzalloc(sizeof(*vgc), GFP_KERNEL);
	if (!vgc)
		return -ENOMEM;
	ret = ida_alloc_max(&vgc_ida, VGC_MAX_DEVICES - 1, GFP_KERNEL);
	if (ret < 0) {
		kfree(vgc);
		return ret;
	}
	vgc->index = ret;
	vgc->vdev = vdev;
	spin_lock_init(&vgc->lock);
	INIT_LIST_HEAD(&vgc->inflight);
	INIT_LIST_HEAD(&vgc->reap);
	init_waitqueue_head(&vgc->room_wq);
	INIT_WORK(&vgc->reap_work, vgc_reap_work);
	INIT_WORK(&vgc->reset_work, vgc_reset_work);
	vdev->priv = vgc;

	/* From here on put_device() frees vgc and its index. */
	device_initialize(&vgc->dev);
	vgc->dev.class = vgc_class;
	vgc->dev.parent = &vdev->dev;
	vgc->dev.devt = MKDEV(MAJOR(vgc_devt), vgc->index);
	vgc->dev.release = vgc_dev_release;
	ret = dev_set_name(&vgc->dev, "vgc%d", vgc->index);
	if (ret)
		goto err_put;

	ret = vgc_start(vgc);
	if (ret)
		goto err_put;

	cdev_init(&vgc->cdev, &vgc_fops);
	vgc->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&vgc->cdev, &vgc->dev);
	if (ret)
		goto err_stop;

	dev_info(&vgc->dev,
		 "protocol %u, %u GPU(s), max payload %u, %u segments (%u per chain)\n",
		 vgc->protocol_version, vgc->num_gpus, vgc->max_payload,
		 vgc->max_segments, vgc->max_desc);
	return 0;

err_stop:
	vgc_stop(vgc);
err_put:
	vdev->priv = NULL;
	put_device(&vgc->dev);
	return ret;
}

static void vgc_remove(struct virtio_device *vdev)
{
	struct vgc_device *vgc = vdev->priv;

	/* The core disabled config interrupts: no reset gets scheduled. */
	cancel_work_sync(&vgc->reset_work);

	/* No new opens; open files keep vgc and get -ENODEV. */
	cdev_device_del(&vgc->cdev, &vgc->dev);

	vgc_stop(vgc);
	flush_work(&vgc->reap_work);

	vgc->vdev = NULL;
	vdev->priv = NULL;
	put_device(&vgc->dev);
}

static void vgc_config_changed(struct virtio_device *vdev)
{
	struct vgc_device *vgc = vdev->priv;
	u8 status = vdev->config->get_status(vdev);

	/* Called with interrupts off: reset from process context. */
	if (vgc && (status & VIRTIO_CONFIG_S_NEEDS_RESET))
		schedule_work(&vgc->reset_work);
}

#ifdef CONFIG_PM_SLEEP
/* remove without the unregister: /dev/vgcN stays, its sessions do not. */
static int vgc_freeze(struct virtio_device *vdev)
{
	struct vgc_device *vgc = vdev->priv;

	cancel_work_sync(&vgc->reset_work);
	vgc_stop(vgc);
	flush_work(&vgc->reap_work);
	return 0;
}

/* The tail of probe; the core reset the device and negotiated features. */
static int vgc_restore(struct virtio_device *vdev)
{
	return vgc_start(vdev->priv);
}
#endif

static int vgc_validate(struct virtio_device *vdev)
{
	/* The config space is little-endian: modern devices only. */
	if (!virtio_has_feature(vdev, VIRTIO_F_VERSION_1))
		return -ENODEV;
	return 0;
}

static const struct virtio_device_id vgc_id_table[] = {
	{ VIRTIO_ID_GPU_COMPUTE, VIRTIO_DEV_ANY_ID },
	{ 0 },
};
MODULE_DEVICE_TABLE(virtio, vgc_id_table);

static struct virtio_driver vgc_driver = {
	.driver.name	= KBUILD_MODNAME,
	.driver.owner	= THIS_MODULE,
	.id_table	= vgc_id_table,
	.validate	= vgc_validate,
	.probe		= vgc_probe,
	.remove		= vgc_remove,
	.config_changed	= vgc_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze		= vgc_freeze,
	.restore	= vgc_restore,
#endif
};

static char *vgc_devnode(struct device *dev, umode_t *mode)
{
	/* Sessions are per open file: any process may have its own. */
	if (mode)
		*mode = 0666;
	return NULL;
}

static int __init vgc_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&vgc_devt, 0, VGC_MAX_DEVICES, "vgc");
	if (ret)
		return ret;
	vgc_class = class_create(THIS_MODULE, "vgc");
	if (IS_ERR(vgc_class)) {
		ret = PTR_ERR(vgc_class);
		goto err_region;
	}
	vgc_class->devnode = vgc_devnode;
	ret = register_virtio_driver(&vgc_driver);
	if (ret)
		goto err_class;
	return 0;

err_class:
	class_destroy(vgc_class);
err_region:
	unregister_chrdev_region(vgc_devt, VGC_MAX_DEVICES);
	return ret;
}

static void __exit vgc_exit(void)
{
	unregister_virtio_driver(&vgc_driver);
	class_destroy(vgc_class);
	unregister_chrdev_region(vgc_devt, VGC_MAX_DEVICES);
}

module_init(vgc_init);
module_exit(vgc_exit);

MODULE_DESCRIPTION("virtio-gpu-compute guest driver (/dev/vgcN)");
MODULE_LICENSE("GPL");
