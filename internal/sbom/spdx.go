package sbom

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SPDX version and data license of the documents [ToSPDX] writes.
const (
	SPDXVersion     = "SPDX-2.3"
	SPDXDataLicense = "CC0-1.0"
	spdxNoAssertion = "NOASSERTION"
	spdxDocumentID  = "SPDXRef-DOCUMENT"
)

// SPDXDocument is the subset of an SPDX 2.3 JSON document Skiff writes.
type SPDXDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      SPDXCreationInfo   `json:"creationInfo"`
	Packages          []SPDXPackage      `json:"packages"`
	Relationships     []SPDXRelationship `json:"relationships"`
}

// SPDXCreationInfo says who made the document and when.
type SPDXCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
	Comment  string   `json:"comment,omitempty"`
}

// SPDXPackage is an SPDX package.
type SPDXPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Checksums             []SPDXChecksum    `json:"checksums,omitempty"`
	LicenseConcluded      string            `json:"licenseConcluded"`
	LicenseDeclared       string            `json:"licenseDeclared"`
	LicenseComments       string            `json:"licenseComments,omitempty"`
	CopyrightText         string            `json:"copyrightText"`
	ExternalRefs          []SPDXExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

// SPDXChecksum is a package checksum.
type SPDXChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// SPDXExternalRef is a package's external reference (its purl).
type SPDXExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// SPDXRelationship relates two SPDX elements.
type SPDXRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// ToSPDX converts a CycloneDX document Skiff wrote (see [Parse]) into
// an SPDX 2.3 JSON document: the subject becomes the package the
// document describes, every component a package it contains, purls
// external references, hashes checksums, and Skiff's properties (where
// in the image a package was found) package comments. Licenses as found
// are not always SPDX expressions, so they go to licenseComments and
// the declared license is NOASSERTION.
//
// The output depends only on data and created (the archive records no
// build time; callers pass SOURCE_DATE_EPOCH or the zero time, written
// as 1970-01-01T00:00:00Z).
func ToSPDX(data []byte, created time.Time) ([]byte, error) {
	bom, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	subject := Component{Type: "application", Name: "unnamed"}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		subject = *bom.Metadata.Component
	}
	creators := []string{}
	if bom.Metadata != nil && bom.Metadata.Tools != nil {
		for _, t := range bom.Metadata.Tools.Components {
			creators = append(creators, "Tool: "+cmp.Or(t.Name, "skiff")+"-"+t.Version)
		}
	}
	if len(creators) == 0 {
		creators = []string{"Tool: skiff"}
	}
	for i, c := range creators {
		creators[i] = strings.TrimSuffix(c, "-")
	}
	sum := sha256.Sum256(data)
	doc := SPDXDocument{
		SPDXVersion: SPDXVersion,
		DataLicense: SPDXDataLicense,
		SPDXID:      spdxDocumentID,
		Name:        subject.Name,
		// A URI unique to this document's content, as the SPDX
		// specification asks.
		DocumentNamespace: "https://spdx.org/spdxdocs/skiff-" + spdxIDPart(subject.Name) + "-" + hex.EncodeToString(sum[:16]),
		CreationInfo: SPDXCreationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: creators,
			Comment:  "Converted from the CycloneDX " + bom.SpecVersion + " SBOM " + bom.SerialNumber,
		},
		Packages:      []SPDXPackage{},
		Relationships: []SPDXRelationship{},
	}
	if bom.Metadata != nil && len(bom.Metadata.Properties) > 0 {
		subject.Properties = append(subject.Properties, bom.Metadata.Properties...)
	}
	root := spdxPackage(subject, "SPDXRef-Subject")
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, SPDXRelationship{spdxDocumentID, "DESCRIBES", root.SPDXID})
	comps := append([]Component(nil), bom.Components...)
	sortComponents(comps)
	for i, c := range comps {
		p := spdxPackage(c, fmt.Sprintf("SPDXRef-Package-%d-%s", i+1, spdxIDPart(c.Name)))
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, SPDXRelationship{root.SPDXID, "CONTAINS", p.SPDXID})
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding SPDX SBOM: %w", err)
	}
	return append(out, '\n'), nil
}

func spdxPackage(c Component, id string) SPDXPackage {
	p := SPDXPackage{
		SPDXID:                id,
		Name:                  cmp.Or(c.Name, "unnamed"),
		VersionInfo:           c.Version,
		DownloadLocation:      spdxNoAssertion,
		PrimaryPackagePurpose: spdxPurpose(c.Type),
		LicenseConcluded:      spdxNoAssertion,
		LicenseDeclared:       spdxNoAssertion,
		CopyrightText:         spdxNoAssertion,
	}
	for _, h := range c.Hashes {
		if alg := spdxAlgorithm(h.Alg); alg != "" {
			p.Checksums = append(p.Checksums, SPDXChecksum{alg, h.Content})
		}
	}
	var lic []string
	for _, l := range c.Licenses {
		if l.License != nil && l.License.Name != "" {
			lic = append(lic, l.License.Name)
		}
	}
	if len(lic) > 0 {
		p.LicenseComments = "licenses as found: " + strings.Join(lic, ", ")
	}
	if c.PURL != "" {
		p.ExternalRefs = []SPDXExternalRef{{"PACKAGE-MANAGER", "purl", c.PURL}}
	}
	var props []string
	for _, pr := range c.Properties {
		props = append(props, pr.Name+"="+pr.Value)
	}
	p.Comment = strings.Join(props, "\n")
	return p
}

// spdxPurpose maps a CycloneDX component type to an SPDX primary
// package purpose.
func spdxPurpose(typ string) string {
	switch typ {
	case "container":
		return "CONTAINER"
	case "operating-system":
		return "OPERATING-SYSTEM"
	case "library":
		return "LIBRARY"
	case "application":
		return "APPLICATION"
	case "file":
		return "FILE"
	case "framework":
		return "FRAMEWORK"
	case "firmware":
		return "FIRMWARE"
	case "device":
		return "DEVICE"
	}
	return "OTHER"
}

// spdxAlgorithm maps a CycloneDX hash algorithm to SPDX's name, or "".
func spdxAlgorithm(alg string) string {
	switch strings.ToUpper(alg) {
	case "SHA-1":
		return "SHA1"
	case "SHA-256":
		return "SHA256"
	case "SHA-384":
		return "SHA384"
	case "SHA-512":
		return "SHA512"
	case "MD5":
		return "MD5"
	}
	return ""
}

// spdxIDPart keeps the characters an SPDX identifier allows
// (letters, digits, "." and "-"), replacing others by "-".
func spdxIDPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
